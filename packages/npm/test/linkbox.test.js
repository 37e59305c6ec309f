'use strict';
// The installed packages used as a partner's test suite would: a link created with fetch, a
// signed webhook at a loopback receiver, the clock, the journal, `npx linkbox`, and the
// process gone afterwards.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { spawn, execFileSync } = require('node:child_process');
const { startLinkbox, binaryPath, ControlError, VerificationError } = require('linkbox');
const { startReceiver, settledDeliveries, isRunning, gone, answers } = require('./helpers.js');

let linkbox;
before(async () => {
  linkbox = await startLinkbox();
});
after(async () => {
  await linkbox.stop();
});

async function createLink(tenant, body) {
  const response = await fetch(`${tenant.url}/partner/links`, {
    method: 'POST',
    headers: { ...tenant.m2mHeaders, 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const answer = await response.json();
  assert.equal(response.status, 201, JSON.stringify(answer));
  return answer.data;
}

test('the installed packages are what runs', () => {
  const installed = require.resolve('linkbox');
  assert.match(installed, /node_modules[\\/]linkbox[\\/]index\.js$/);
  const binary = binaryPath();
  assert.match(binary, /node_modules[\\/]@linkbox[\\/]linux-x64[\\/]bin[\\/]linkbox$/);
  const { version } = require('linkbox/package.json');
  assert.equal(require('@linkbox/linux-x64/package.json').version, version);
  assert.equal(execFileSync(binary, ['--version'], { encoding: 'utf8' }).trim(), `linkbox ${version}`);
});

test('a link created with fetch is in the tenant\'s journal', async () => {
  const tenant = await linkbox.tenant();
  const link = await createLink(tenant, { referenceId: 'user-42', metadata: { orderId: 'ORD-1' } });
  assert.equal(link.referenceId, 'user-42');
  assert.ok(link.url.startsWith(`${linkbox.url}/widget/${link.linkId}/`));
  const journal = await tenant.requests({ method: 'POST', path: '/partner/links' });
  assert.deepEqual(
    journal.map((entry) => [entry.method, entry.path, entry.status]),
    [['POST', '/partner/links', 201]],
  );
  await tenant.reset();
  assert.deepEqual(await tenant.requests(), []);
});

test('a Leaf magic link created with a Leaf token', async () => {
  const tenant = await linkbox.tenant();
  const response = await fetch(`${tenant.url}/services/widgets/api/magic-link/provider`, {
    method: 'POST',
    headers: { ...tenant.leafHeaders, 'Content-Type': 'application/json' },
    body: JSON.stringify({ externalId: 'farm-42', allowedProviders: ['JohnDeere'] }),
  });
  const magic = await response.json();
  assert.equal(response.status, 200, JSON.stringify(magic));
  assert.equal(magic.link, `${tenant.url}/magic-link/${magic.id}`);
  assert.deepEqual((await tenant.requests({ leaf: true })).map((entry) => entry.status), [200]);
  assert.deepEqual(await tenant.requests(), []);
});

test('the webhook arrives signed at a local receiver', async () => {
  const receiver = await startReceiver();
  try {
    const tenant = await linkbox.tenant();
    const secret = await tenant.regenerateWebhookSecret();
    await tenant.setWebhookUrl(receiver.url);
    const link = await createLink(tenant, { referenceId: 'ana' });
    const hook = await receiver.waitFor('link.created');
    const timestamp = hook.headers['x-m2m-timestamp'];
    const expected = crypto.createHmac('sha256', secret).update(`${timestamp}.`).update(hook.body).digest('hex');
    assert.equal(hook.headers['x-m2m-signature'], `sha256=${expected}`);
    assert.equal(hook.json.data.linkId, link.linkId);
    // The receiver has answered, but linkbox records the outcome only once it has read that
    // answer: the delivery leaves `pending` a moment after the webhook arrives.
    const settled = await settledDeliveries(tenant);
    assert.deepEqual(
      settled.map((delivery) => [delivery.event, delivery.status]),
      [['link.created', 'delivered']],
    );
  } finally {
    await receiver.close();
  }
});

/**
 * Seeds `count` links for the partner and opens each: `count` link.opened deliveries (and a
 * user.data_request for each sender missing data), which fail at once as the partner has no
 * webhook URL.
 */
async function openSeededLinks(url, key, count) {
  const headers = { 'X-API-Key': key, 'Content-Type': 'application/json' };
  const seeded = await fetch(`${url}/_sandbox/seed`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ api: 'm2m', count, rngSeed: 7, mix: { created: 1 } }),
  });
  assert.equal(seeded.status, 201);
  for (const linkId of (await seeded.json()).created) {
    const opened = await fetch(`${url}/_sandbox/m2m/links/${linkId}/open`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ userAgent: 'node', platform: 'web', language: 'en' }),
    });
    assert.equal(opened.status, 200, await opened.text());
  }
}

test('webhooks() lists every delivery, not only the first page', async () => {
  // linkbox lists deliveries a page at a time (100 by default, at most 1,000).
  const own = await startLinkbox();
  try {
    const busy = await own.tenant();
    const quiet = await own.tenant();
    await openSeededLinks(own.url, busy.key, 800);
    await openSeededLinks(own.url, quiet.key, 2);
    const first = await (await fetch(`${own.url}/_sandbox/webhooks?limit=1000`, { headers: busy.m2mHeaders })).json();
    assert.ok(first.total > 1000 && first.nextBefore, 'the test needs more than one page of 1,000');
    const deliveries = await busy.webhooks();
    assert.equal(deliveries.length, first.total);
    assert.equal(new Set(deliveries.map((delivery) => delivery.id)).size, first.total);
    // Newest first, as the server orders its pages.
    assert.deepEqual(
      deliveries.slice(0, 1000).map((delivery) => delivery.id),
      first.deliveries.map((delivery) => delivery.id),
    );
    assert.deepEqual([...new Set(deliveries.map((delivery) => delivery.tenant))], [first.deliveries[0].tenant]);
    const quietDeliveries = await quiet.webhooks();
    assert.ok(quietDeliveries.length >= 2 && quietDeliveries.length < 10, String(quietDeliveries.length));
    // Without a key, every tenant's.
    assert.equal((await own.webhooks()).length, first.total + quietDeliveries.length);
  } finally {
    await own.stop();
  }
});

test('advancing the clock expires a link', async () => {
  const tenant = await linkbox.tenant();
  const link = await createLink(tenant, { referenceId: 'short-lived', expiresInMinutes: 5 });
  const expired = async () => {
    const response = await fetch(`${tenant.url}/partner/links?visibility=expired`, { headers: tenant.m2mHeaders });
    assert.equal(response.status, 200);
    return (await response.json()).data.items.map((item) => item.linkId);
  };
  assert.deepEqual(await expired(), []);
  const before = (await linkbox.clock()).offsetSeconds;
  const clock = await tenant.advance(6 * 60);
  assert.equal(clock.offsetSeconds, before + 6 * 60);
  assert.deepEqual(await expired(), [link.linkId]);
  await assert.rejects(linkbox.advance(1.5), TypeError);
});

test('verify counts the calls made', async () => {
  const tenant = await linkbox.tenant();
  await createLink(tenant, { referenceId: 'user-1' });
  await createLink(tenant, { referenceId: 'user-2' });
  const matched = await tenant.verify({ method: 'POST', path: '/partner/links', bodyJson: { referenceId: 'user-1' }, count: 1 });
  assert.equal(matched, 1);
  assert.equal(await tenant.verify({ method: 'POST', path: '/partner/links', count: { atLeast: 2 } }), 2);
  await assert.rejects(
    tenant.verify({ method: 'POST', path: '/partner/links', bodyContains: 'user-3' }),
    (error) => error instanceof VerificationError && error.message.includes('user-3'),
  );
});

test('an exported admin token is presented', async () => {
  const exported = process.env.LINKBOX_ADMIN_TOKEN;
  process.env.LINKBOX_ADMIN_TOKEN = 'exported-admin-token';
  let own;
  try {
    own = await startLinkbox();
  } finally {
    if (exported === undefined) delete process.env.LINKBOX_ADMIN_TOKEN;
    else process.env.LINKBOX_ADMIN_TOKEN = exported;
  }
  try {
    // linkbox took the token from its environment: a call without it is refused...
    assert.equal((await fetch(`${own.url}/_sandbox/reset`, { method: 'POST' })).status, 401);
    // ...and the wrappers present it for calls without a key.
    assert.deepEqual(await own.reset(), { scope: 'all' });
    assert.deepEqual(await own.webhooks(), []);
  } finally {
    await own.stop();
  }
  const given = await startLinkbox({ env: { ...process.env, LINKBOX_ADMIN_TOKEN: 'given-admin-token' } });
  try {
    assert.deepEqual(await given.reset(), { scope: 'all' });
  } finally {
    await given.stop();
  }
  // A token passed as a plain flag, either way of writing it, is presented too.
  for (const args of [['--admin-token', 'flag-admin-token'], ['--admin-token=flag-admin-token']]) {
    const flagged = await startLinkbox({ args });
    try {
      assert.equal((await fetch(`${flagged.url}/_sandbox/reset`, { method: 'POST' })).status, 401);
      assert.deepEqual(await flagged.reset(), { scope: 'all' });
    } finally {
      await flagged.stop();
    }
  }
});

test('a control error carries linkbox\'s code', async () => {
  await assert.rejects(linkbox.advance(10 ** 12), (error) => {
    assert.ok(error instanceof ControlError);
    assert.equal(error.status, 400);
    assert.equal(error.code, 'INVALID_REQUEST');
    assert.match(error.message, /advanceSeconds/);
    return true;
  });
});

test('every M2M key is a fresh, well-formed partner', async () => {
  const keys = [linkbox.m2mKey(), linkbox.m2mKey()];
  assert.notEqual(keys[0], keys[1]);
  for (const key of keys) {
    assert.match(key, /^m2m_test_[A-Za-z0-9]{32}$/);
    const response = await fetch(`${linkbox.url}/partner/links`, { headers: { 'X-API-Key': key } });
    assert.equal(response.status, 200);
  }
});

test('stop() leaves no process behind', async () => {
  const own = await startLinkbox({ seed: 2 });
  const { pid } = own;
  assert.ok(isRunning(pid));
  const listed = await fetch(`${own.url}/partner/links`, {
    headers: { 'X-API-Key': 'm2m_test_demo0000000000000000000000000000' },
  });
  assert.equal((await listed.json()).data.pagination.total, 2);
  await own.stop();
  assert.equal(own.running, false);
  assert.equal(isRunning(pid), false);
  assert.ok(own.stdoutLines.some((line) => line.startsWith('demo M2M key:')));
  await own.stop(); // twice is harmless
});

test('the seed credentials are there as soon as it has started', async () => {
  // Read at once, with nothing in between: printed line by line, they were missing about
  // one start in four.
  for (let start = 0; start < 12; start += 1) {
    const own = await startLinkbox({ seed: 1 });
    const lines = own.stdoutLines;
    await own.stop();
    assert.ok(lines.some((line) => line.startsWith('demo Leaf token: ')), lines.join('\n'));
    assert.ok(lines.at(-1).startsWith('dashboard: '), lines.join('\n'));
  }
});

test('npx linkbox serve runs the sandbox and stops with it', async () => {
  const project = path.dirname(path.dirname(require.resolve('linkbox/package.json')));
  const npx = spawn('npx', ['--no-install', 'linkbox', 'serve', '--addr', '127.0.0.1:0'], {
    cwd: path.dirname(project),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise((resolve) => npx.once('exit', (code, signal) => resolve({ code, signal })));
  try {
    const url = await new Promise((resolve, reject) => {
      let text = '';
      npx.stdout.on('data', (chunk) => {
        text += chunk;
        const line = text.split('\n')[0];
        if (text.includes('\n')) resolve(line.replace('listening on ', '').trim());
      });
      npx.once('exit', () => reject(new Error(`npx linkbox exited: ${text}`)));
    });
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal((await (await fetch(`${url}/_sandbox/health`)).json()).status, 'ok');
    npx.kill('SIGTERM');
    await exited;
    // npx takes only its shell down; the wrapper sees that and stops linkbox itself.
    const deadline = Date.now() + 10_000;
    for (;;) {
      const answered = await fetch(`${url}/_sandbox/health`).then(() => true, () => false);
      if (!answered) break;
      assert.ok(Date.now() < deadline, 'linkbox still answers after npx was stopped');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    npx.kill('SIGKILL');
  }
});

/** Every process below `pid`, from /proc (empty where the kernel does not list children). */
function descendants(pid) {
  let tasks;
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const children = tasks.flatMap((task) => {
    try {
      return fs.readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  });
  return children.flatMap((child) => [child, ...descendants(child)]);
}

test('npx linkbox serve killed with SIGKILL leaves nothing behind', async () => {
  const project = path.dirname(path.dirname(require.resolve('linkbox/package.json')));
  const npx = spawn('npx', ['--no-install', 'linkbox', 'serve', '--addr', '127.0.0.1:0'], {
    cwd: path.dirname(project),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise((resolve) => npx.once('exit', resolve));
  let below = [];
  try {
    const url = await new Promise((resolve, reject) => {
      let text = '';
      npx.stdout.on('data', (chunk) => {
        text += chunk;
        if (text.includes('\n')) resolve(text.split('\n')[0].replace('listening on ', '').trim());
      });
      npx.once('exit', () => reject(new Error(`npx linkbox exited: ${text}`)));
    });
    assert.ok(await answers(url));
    // npm's shell, the wrapper script and linkbox: none may outlive npx killed outright.
    below = descendants(npx.pid);
    npx.kill('SIGKILL');
    await exited;
    const deadline = Date.now() + 10_000;
    while (await answers(url)) {
      assert.ok(Date.now() < deadline, 'linkbox still answers after npx was killed');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    for (const pid of below) {
      assert.ok(await gone(pid), `process ${pid} (started by npx) outlived it`);
    }
  } finally {
    npx.kill('SIGKILL');
    for (const pid of below) {
      if (isRunning(pid)) process.kill(pid, 'SIGKILL');
    }
  }
});

test('a node --test runner killed outright leaves no linkbox behind its hung test', async () => {
  const work = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'linkbox-runner-'));
  const file = path.join(work, 'hung.test.js');
  const urlFile = path.join(work, 'url');
  fs.writeFileSync(
    file,
    `const { test } = require('node:test');
const fs = require('node:fs');
const { startLinkbox } = require(${JSON.stringify(require.resolve('linkbox'))});
test('hangs', async () => {
  const linkbox = await startLinkbox();
  fs.writeFileSync(${JSON.stringify(urlFile)}, linkbox.url);
  await new Promise(() => setInterval(() => {}, 1000));
});
`,
  );
  // A runner of its own: not this file's runner's child context.
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  const runner = spawn(process.execPath, ['--test', file], { stdio: 'ignore', env });
  let below = [];
  try {
    const deadline = Date.now() + 20_000;
    while (!fs.existsSync(urlFile) || fs.readFileSync(urlFile, 'utf8') === '') {
      assert.ok(Date.now() < deadline, 'the hung test never started its linkbox');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const url = fs.readFileSync(urlFile, 'utf8');
    assert.ok(await answers(url));
    below = descendants(runner.pid);
    runner.kill('SIGKILL');
    const stopped = Date.now() + 10_000;
    while (await answers(url)) {
      assert.ok(Date.now() < stopped, 'linkbox still answers after its test runner was killed');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    runner.kill('SIGKILL');
    for (const pid of below) {
      if (isRunning(pid)) process.kill(pid, 'SIGKILL');
    }
    fs.rmSync(work, { recursive: true, force: true });
  }
});

test('the wrapper script is an executable node script', () => {
  const script = path.join(path.dirname(require.resolve('linkbox/package.json')), 'bin', 'linkbox.js');
  assert.ok(fs.readFileSync(script, 'utf8').startsWith('#!/usr/bin/env node'));
});

test('a state file keeps links across restarts', async () => {
  const state = path.join(fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'linkbox-state-')), 'sandbox.db');
  const key = linkbox.m2mKey();
  const first = await startLinkbox({ state });
  try {
    await createLink({ url: first.url, m2mHeaders: { 'X-API-Key': key } }, { referenceId: 'kept' });
  } finally {
    await first.stop();
  }
  const second = await startLinkbox({ state });
  try {
    const listed = await (await fetch(`${second.url}/partner/links`, { headers: { 'X-API-Key': key } })).json();
    assert.deepEqual(listed.data.items.map((item) => item.referenceId), ['kept']);
  } finally {
    await second.stop();
  }
});
