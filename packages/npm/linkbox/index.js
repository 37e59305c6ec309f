'use strict';
// linkbox from Node: `startLinkbox(options)` starts the linkbox binary on a free loopback
// port, resolves once it has printed its address, and hands back thin wrappers over the
// control API under /_sandbox. No runtime dependencies: child_process, crypto and the
// global fetch (Node 18+).

const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const { binaryPath } = require('./binary.js');

/** The first line `linkbox serve` prints on stdout. */
const LISTENING_PREFIX = 'listening on ';
/** How much of linkbox's stderr is kept for error messages (the newest bytes). */
const STDERR_TAIL_BYTES = 64 * 1024;
/** The prefix of a sandbox M2M key; 32 letters or digits follow it. */
const TEST_KEY_PREFIX = 'm2m_test_';
/** Deliveries asked for per `GET /_sandbox/webhooks` page: the most linkbox answers at once. */
const DELIVERY_PAGE = 1000;
/** Linkbox's calls on behalf of a Tenant, outside the public surface. */
const CALL = Symbol('linkbox.call');

class LinkboxError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = 'LinkboxError';
  }
}

/** linkbox could not be started; `stderr` is what it said. */
class StartError extends LinkboxError {
  constructor(message, { stderr = '', exitCode = null, signal = null, pid = null, cause } = {}) {
    super(message, cause ? { cause } : undefined);
    this.name = 'StartError';
    this.stderr = stderr;
    this.exitCode = exitCode;
    this.signal = signal;
    this.pid = pid;
  }
}

/** linkbox answered a control call with an error status. */
class ControlError extends LinkboxError {
  constructor(method, path, status, body) {
    const error = body && typeof body === 'object' ? body.error : undefined;
    const code = error && typeof error === 'object' ? error.code : undefined;
    const said = code ? ` ${code}: ${error.message}` : `: ${typeof body === 'string' ? body : JSON.stringify(body)}`;
    super(`${method} ${path} answered ${status}${said}`);
    this.name = 'ControlError';
    this.method = method;
    this.path = path;
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

/** `verify()` found a different number of matching requests; the message lists near-misses. */
class VerificationError extends LinkboxError {
  constructor(message, body) {
    super(message);
    this.name = 'VerificationError';
    this.body = body;
  }
}

/** A fresh, well-formed M2M sandbox key: in open mode, a partner of its own. */
function newM2mKey() {
  return TEST_KEY_PREFIX + crypto.randomBytes(16).toString('hex');
}

// Every linkbox started and not yet stopped: none may outlive this process. The exit hook
// covers an orderly exit; a process killed by a signal runs no hook, so linkbox also runs
// with `--stop-with-stdin` and a stdin pipe only this process holds (libuv opens it
// close-on-exec): when this process goes, however it goes, the pipe closes and linkbox stops.
const live = new Set();
let exitHookInstalled = false;
function installExitHook() {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) {
      try {
        child.kill('SIGKILL');
      } catch {
        // Already gone.
      }
    }
  });
  // `node --test` runs each test file in a child process of its own, which holds the pipe.
  // A runner killed outright (SIGKILL, SIGHUP: a CI job cancelled) leaves that child
  // running, a hung test with it; the child then belongs to another parent, and its
  // linkboxes stop.
  if (process.env.NODE_TEST_CONTEXT) {
    const runner = process.ppid;
    const watch = setInterval(() => {
      if (process.ppid === runner) return;
      clearInterval(watch);
      for (const child of live) {
        try {
          child.kill('SIGTERM');
        } catch {
          // Already gone.
        }
      }
    }, 500);
    watch.unref();
  }
}

/** The newest `STDERR_TAIL_BYTES` of a stream. */
function tail(stream) {
  let chunks = [];
  let size = 0;
  stream.on('data', (chunk) => {
    chunks.push(chunk);
    size += chunk.length;
    while (size - chunks[0].length >= STDERR_TAIL_BYTES) {
      size -= chunks.shift().length;
    }
  });
  return () => {
    const all = Buffer.concat(chunks);
    return all.subarray(Math.max(0, all.length - STDERR_TAIL_BYTES)).toString('utf8');
  };
}

function exited(child) {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Resolves when the child has exited (at once if it already has). */
function whenExited(child) {
  if (exited(child)) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** SIGTERM, up to `timeoutMs` for a graceful exit, then SIGKILL. */
async function terminate(child, timeoutMs) {
  if (!exited(child) && child.pid !== undefined) {
    child.kill('SIGTERM');
    let timer;
    const late = new Promise((resolve) => {
      timer = setTimeout(() => resolve('late'), timeoutMs);
    });
    const outcome = await Promise.race([whenExited(child), late]);
    clearTimeout(timer);
    if (outcome === 'late') {
      child.kill('SIGKILL');
      await whenExited(child);
    }
  }
  live.delete(child);
}

/**
 * The `--admin-token` among `args` (`--admin-token T` or `--admin-token=T`; the last one
 * given), so a token passed as a plain flag is presented too.
 * @param {readonly unknown[]} args
 * @returns {string | undefined}
 */
function adminTokenIn(args) {
  let token;
  for (let i = 0; i < args.length; i++) {
    const arg = String(args[i]);
    if (arg === '--admin-token' && i + 1 < args.length) token = String(args[++i]);
    else if (arg.startsWith('--admin-token=')) token = arg.slice('--admin-token='.length);
  }
  return token;
}

function serveArgs(options) {
  const args = ['serve', '--addr', options.addr || '127.0.0.1:0', '--stop-with-stdin'];
  if (options.config != null) args.push('--config', String(options.config));
  if (options.state != null) args.push('--state', String(options.state));
  if (options.seed != null) args.push('--seed', String(options.seed));
  if (options.adminToken != null) args.push('--admin-token', options.adminToken);
  return args.concat((options.args || []).map(String));
}

/**
 * Starts linkbox and resolves once it listens; rejects with a StartError carrying its stderr
 * when it cannot, leaving no process behind.
 * @param {import('./index').LinkboxOptions} [options]
 * @returns {Promise<Linkbox>}
 */
async function startLinkbox(options = {}) {
  let binary;
  try {
    // An explicit env's LINKBOX_BINARY is the one the caller means, over this process's.
    const where = options.env && options.env.LINKBOX_BINARY ? { env: options.env } : {};
    binary = options.binary != null ? String(options.binary) : binaryPath(where);
  } catch (error) {
    // No platform package for this machine, or it is not installed.
    throw new StartError(`cannot start linkbox: ${error.message}`, { cause: error });
  }
  const args = serveArgs(options);
  const command = [binary, ...args].join(' ');
  const startTimeoutMs = options.startTimeoutMs ?? 10_000;
  const stopTimeoutMs = options.stopTimeoutMs ?? 5_000;
  const env = { ...(options.env || process.env) };
  if (env.NO_COLOR === undefined) env.NO_COLOR = '1';

  installExitHook();
  const child = spawn(binary, args, { stdio: ['pipe', 'pipe', 'pipe'], env });
  if (child.pid !== undefined) live.add(child);
  // Nothing is written on it; a linkbox that is gone must not make it an uncaught error.
  child.stdin.on('error', () => {});
  const stderr = tail(child.stderr);
  const lines = [];
  let buffered = '';
  let firstLine;
  let onFirstLine = () => {};
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (text) => {
    buffered += text;
    let newline;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, newline).replace(/\r$/, '');
      buffered = buffered.slice(newline + 1);
      if (firstLine === undefined) {
        firstLine = line;
        onFirstLine(line);
      } else {
        lines.push(line);
      }
    }
  });
  const streamsClosed = Promise.all(
    [child.stdout, child.stderr].map((stream) => new Promise((resolve) => stream.once('close', resolve))),
  );

  const fail = async (what, cause) => {
    if (child.pid !== undefined) {
      await terminate(child, 2_000);
      // Let the pipes drain so that the message has everything linkbox said.
      await Promise.race([streamsClosed, new Promise((resolve) => setTimeout(resolve, 2_000))]);
    }
    const said = stderr().trim();
    const status =
      child.exitCode !== null ? ` (exit status ${child.exitCode})` : child.signalCode ? ` (${child.signalCode})` : '';
    const detail = said ? `; its stderr:\n${said}` : '; it wrote nothing on stderr';
    return new StartError(`${what}${status}${detail}\ncommand: ${command}`, {
      stderr: said,
      exitCode: child.exitCode,
      signal: child.signalCode,
      pid: child.pid ?? null,
      cause,
    });
  };

  const outcome = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ kind: 'timeout' }), startTimeoutMs);
    const settle = (value) => {
      clearTimeout(timer);
      resolve(value);
    };
    onFirstLine = (line) => settle({ kind: 'line', line });
    child.once('error', (error) => settle({ kind: 'error', error }));
    // 'close' (not 'exit'): stdout has ended too, so a first line cannot still be on its way.
    child.once('close', () => settle(firstLine === undefined ? { kind: 'exit' } : { kind: 'line', line: firstLine }));
  });

  switch (outcome.kind) {
    case 'error': {
      const reason =
        outcome.error.code === 'ENOENT'
          ? `${binary} does not exist`
          : outcome.error.code === 'EACCES'
            ? `${binary} is not executable`
            : `${binary}: ${outcome.error.message}`;
      live.delete(child);
      throw new StartError(`cannot start linkbox: ${reason}`, { cause: outcome.error });
    }
    case 'timeout':
      throw await fail(`linkbox printed no address within ${startTimeoutMs} ms`);
    case 'exit':
      throw await fail('linkbox exited before printing its address');
    default:
      if (!outcome.line.startsWith(LISTENING_PREFIX)) {
        throw await fail(`linkbox printed ${JSON.stringify(outcome.line)} instead of its address`);
      }
  }

  // A later failure to signal it is reported by stop(), never as an uncaught 'error' event.
  child.on('error', () => {});
  // The sandbox must never keep this process alive: the exit hook stops it instead.
  child.unref();
  child.stdin.unref?.();
  child.stdout.unref?.();
  child.stderr.unref?.();
  return new Linkbox({
    child,
    url: outcome.line.slice(LISTENING_PREFIX.length).trim(),
    stderr,
    lines,
    // The token linkbox was given: as an option, as a flag among `args`, or else the
    // LINKBOX_ADMIN_TOKEN of its environment, which linkbox reads when given no flag.
    adminToken:
      options.adminToken ?? adminTokenIn(options.args || []) ?? (env.LINKBOX_ADMIN_TOKEN || undefined),
    stopTimeoutMs,
    requestTimeoutMs: options.requestTimeoutMs ?? 30_000,
  });
}

function credentialHeaders(key, adminToken) {
  if (key != null) {
    return key.startsWith('m2m_') ? { 'X-API-Key': key } : { Authorization: `Bearer ${key}` };
  }
  return adminToken != null ? { Authorization: `Bearer ${adminToken}` } : {};
}

function verificationMessage(spec, body) {
  const error = body && typeof body === 'object' ? body.error : undefined;
  const lines = [`linkbox: the requests do not match ${JSON.stringify(spec)}`];
  if (error && error.message) lines.push(String(error.message));
  lines.push(`linkbox answered: ${JSON.stringify(body, null, 2)}`);
  return lines.join('\n');
}

/** One running linkbox. */
class Linkbox {
  #child;
  #stderr;
  #lines;
  #adminToken;
  #stopTimeoutMs;
  #requestTimeoutMs;
  #stopping;

  constructor({ child, url, stderr, lines, adminToken, stopTimeoutMs, requestTimeoutMs }) {
    this.#child = child;
    this.#stderr = stderr;
    this.#lines = lines;
    this.#adminToken = adminToken;
    this.#stopTimeoutMs = stopTimeoutMs;
    this.#requestTimeoutMs = requestTimeoutMs;
    /** `http://127.0.0.1:PORT`, the base URL of every API. */
    this.url = url;
    /** The process id. */
    this.pid = child.pid;
  }

  /** Whether the process is still running. */
  get running() {
    return !exited(this.#child);
  }

  /** The newest 64 KiB of linkbox's log on stderr. */
  get stderr() {
    return this.#stderr();
  }

  /** What linkbox printed on stdout after its address (the `seed` demo credentials). */
  get stdoutLines() {
    return [...this.#lines];
  }

  /** Stops linkbox (SIGTERM, then SIGKILL after `stopTimeoutMs`); safe to call twice. */
  stop() {
    this.#stopping ??= terminate(this.#child, this.#stopTimeoutMs);
    return this.#stopping;
  }

  /** `await using linkbox = await startLinkbox()` stops it at the end of the block. */
  [Symbol.asyncDispose ?? Symbol.for('Symbol.asyncDispose')]() {
    return this.stop();
  }

  m2mKey() {
    return newM2mKey();
  }

  async leafToken({ username, password = 'linkbox', rememberMe = true } = {}) {
    const name = username ?? `user-${crypto.randomBytes(6).toString('hex')}@linkbox.test`;
    const answer = await this.#call('POST', '/api/authenticate', {
      body: { username: name, password, rememberMe },
      admin: false,
    });
    if (!answer || typeof answer.id_token !== 'string') {
      throw new LinkboxError(`POST /api/authenticate answered no id_token: ${JSON.stringify(answer)}`);
    }
    return answer.id_token;
  }

  async tenant() {
    const key = newM2mKey();
    const username = `tenant-${crypto.randomBytes(6).toString('hex')}@linkbox.test`;
    let token;
    try {
      await this.clock({ key });
      token = await this.leafToken({ username });
    } catch (error) {
      if (!(error instanceof ControlError) || error.status !== 401) throw error;
      throw new LinkboxError(
        "a fresh tenant needs open mode, and this sandbox's config lists its partners or Leaf " +
          `accounts (${error.message}): use the keys and accounts the config names instead`,
        { cause: error },
      );
    }
    return new Tenant(this, key, token, username, 'linkbox');
  }

  reset({ key } = {}) {
    return this.#call('POST', '/_sandbox/reset', { key });
  }

  advance(seconds, { key } = {}) {
    if (typeof seconds !== 'number' || !Number.isInteger(seconds)) {
      return Promise.reject(new TypeError(`advance() takes whole seconds, not ${String(seconds)}`));
    }
    return this.#call('POST', '/_sandbox/clock', { body: { advanceSeconds: seconds }, key });
  }

  clock({ key } = {}) {
    return this.#call('GET', '/_sandbox/clock', { key });
  }

  freeze(frozen = true, { key } = {}) {
    return this.#call('POST', '/_sandbox/clock', { body: { frozen }, key });
  }

  async webhooks({ key } = {}) {
    // linkbox answers a page at a time: follow nextBefore to the last page.
    const deliveries = [];
    const query = new URLSearchParams({ limit: String(DELIVERY_PAGE) });
    for (;;) {
      const page = await this.#call('GET', `/_sandbox/webhooks?${query}`, { key });
      for (const delivery of page.deliveries) deliveries.push(delivery);
      if (!page.nextBefore) return deliveries;
      query.set('before', page.nextBefore);
    }
  }

  async requests({ key, ...filters } = {}) {
    const query = new URLSearchParams();
    for (const [name, value] of Object.entries(filters)) {
      if (value != null) query.set(name, String(value));
    }
    const search = query.toString();
    const target = search ? `/_sandbox/requests?${search}` : '/_sandbox/requests';
    return (await this.#call('GET', target, { key })).requests;
  }

  async verify({ key, method, path, bodyContains, bodyJson, count } = {}) {
    const spec = {};
    if (method != null) spec.method = method;
    if (path != null) spec.path = path;
    if (bodyContains != null) spec.bodyContains = bodyContains;
    if (bodyJson !== undefined) spec.bodyJson = bodyJson;
    if (count != null) spec.count = typeof count === 'number' ? { exactly: count } : count;
    try {
      const answer = await this.#call('POST', '/_sandbox/requests/verify', { body: spec, key });
      return Number(answer.matched);
    } catch (error) {
      if (error instanceof ControlError && error.status === 409) {
        throw new VerificationError(verificationMessage(spec, error.body), error.body);
      }
      throw error;
    }
  }

  async setWebhookUrl(url, { key }) {
    await this.#call('PUT', '/_sandbox/m2m/webhook-config', { body: { url }, key });
  }

  /** One JSON call; non-2xx rejects with a ControlError. */
  async #call(method, target, { body, key, admin = true } = {}) {
    const path = target.split('?')[0];
    const headers = { Accept: 'application/json', ...credentialHeaders(key, admin ? this.#adminToken : undefined) };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let response;
    try {
      response = await fetch(this.url + target, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.#requestTimeoutMs),
      });
    } catch (error) {
      if (!this.running) {
        const child = this.#child;
        const status = child.exitCode !== null ? `exit status ${child.exitCode}` : child.signalCode;
        throw new LinkboxError(
          `${method} ${path}: linkbox is not running (${status}); its stderr:\n${this.stderr.trim()}`,
          { cause: error },
        );
      }
      throw new LinkboxError(`${method} ${path}: ${error.message}`, { cause: error });
    }
    const text = await response.text();
    let decoded = text;
    if (text) {
      try {
        decoded = JSON.parse(text);
      } catch {
        // Not JSON: keep the text.
      }
    } else {
      decoded = null;
    }
    if (!response.ok) {
      throw new ControlError(method, path, response.status, decoded);
    }
    return decoded;
  }

  /** For Tenant: a call to the vendor API with the tenant's key. */
  [CALL](method, target, options) {
    return this.#call(method, target, options);
  }
}

/**
 * A fresh M2M partner (`key`) and Leaf account (`token`) on a linkbox, so that tests sharing
 * one sandbox never see each other's data. The clock stays shared.
 */
class Tenant {
  constructor(linkbox, key, token, username, password) {
    this.linkbox = linkbox;
    this.key = key;
    this.token = token;
    this.username = username;
    this.password = password;
  }

  get url() {
    return this.linkbox.url;
  }

  get m2mHeaders() {
    return { 'X-API-Key': this.key };
  }

  get leafHeaders() {
    return { Authorization: `Bearer ${this.token}` };
  }

  async reset() {
    await this.linkbox.reset({ key: this.key });
    try {
      await this.linkbox.reset({ key: this.token });
    } catch (error) {
      if (!(error instanceof ControlError) || error.status !== 401) throw error;
      // The clock moved past the token's lifetime: the account is still there.
      this.token = await this.linkbox.leafToken({ username: this.username, password: this.password });
      await this.linkbox.reset({ key: this.token });
    }
  }

  advance(seconds) {
    return this.linkbox.advance(seconds, { key: this.key });
  }

  webhooks() {
    return this.linkbox.webhooks({ key: this.key });
  }

  requests({ leaf = false, ...filters } = {}) {
    return this.linkbox.requests({ ...filters, key: leaf ? this.token : this.key });
  }

  verify({ leaf = false, ...spec } = {}) {
    return this.linkbox.verify({ ...spec, key: leaf ? this.token : this.key });
  }

  setWebhookUrl(url) {
    return this.linkbox.setWebhookUrl(url, { key: this.key });
  }

  async regenerateWebhookSecret() {
    const answer = await this.linkbox[CALL]('POST', '/partner/webhooks/config/regenerate-secret', {
      key: this.key,
      admin: false,
    });
    return String(answer.webhookSecret);
  }
}

module.exports = {
  startLinkbox,
  newM2mKey,
  binaryPath,
  Linkbox,
  Tenant,
  LinkboxError,
  StartError,
  ControlError,
  VerificationError,
};
