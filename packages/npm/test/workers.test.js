'use strict';
// The helper as a partner's runner meets it, in separate Node processes: a failing test
// still stops linkbox, a process that exits without stop() or is killed by a signal takes
// linkbox with it, and parallel test files each get their own sandbox.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const { gone, answers } = require('./helpers.js');

// Child test files live next to the installed package so that `require('linkbox')` finds it.
const project = path.dirname(path.dirname(require.resolve('linkbox/package.json')));

function scratch() {
  const dir = fs.mkdtempSync(path.join(path.dirname(project), '.linkbox-workers-'));
  return dir;
}

const RECORD = `
const fs = require('node:fs');
function record(linkbox, extra = {}) {
  fs.appendFileSync(process.env.RECORD_TO, JSON.stringify({ url: linkbox.url, pid: linkbox.pid, ...extra }) + '\\n');
}
`;

function records(file) {
  return fs.readFileSync(file, 'utf8').trim().split('\n').map((line) => JSON.parse(line));
}

function run(dir, args) {
  const recordTo = path.join(dir, 'records.jsonl');
  const result = spawnSync(process.execPath, args, {
    cwd: dir,
    env: { ...process.env, RECORD_TO: recordTo, NODE_TEST_CONTEXT: undefined },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { ...result, recordTo };
}

test('a failing test still stops linkbox', async () => {
  const dir = scratch();
  try {
    fs.writeFileSync(
      path.join(dir, 'fails.test.js'),
      `${RECORD}
const { test, before, after } = require('node:test');
const { startLinkbox } = require('linkbox');
let linkbox;
before(async () => { linkbox = await startLinkbox(); record(linkbox); });
after(() => linkbox.stop());
test('fails', () => { throw new Error("a partner's test fails"); });
`,
    );
    const result = run(dir, ['--test', 'fails.test.js']);
    assert.notEqual(result.status, 0, result.stdout);
    assert.match(result.stdout, /# fail 1/);
    const [entry] = records(result.recordTo);
    assert.ok(await gone(entry.pid), `linkbox ${entry.pid} outlived the failing run`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a process that exits without stop() takes linkbox with it', async () => {
  const dir = scratch();
  try {
    fs.writeFileSync(
      path.join(dir, 'forgets.js'),
      `${RECORD}
const { startLinkbox } = require('linkbox');
startLinkbox().then((linkbox) => {
  record(linkbox);
  throw new Error('an uncaught error, and no stop()');
});
`,
    );
    const result = run(dir, ['forgets.js']);
    assert.equal(result.status, 1, result.stderr);
    assert.match(result.stderr, /an uncaught error/);
    const [entry] = records(result.recordTo);
    assert.ok(await gone(entry.pid), `linkbox ${entry.pid} outlived its Node process`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

for (const signal of ['SIGKILL', 'SIGTERM', 'SIGHUP']) {
  test(`a process killed with ${signal} takes linkbox with it`, async () => {
    // A signal runs no 'exit' hook: linkbox sees its stdin pipe close instead.
    const dir = scratch();
    const node = spawn(
      process.execPath,
      [
        '-e',
        `const { startLinkbox } = require('linkbox');
startLinkbox().then((linkbox) => console.log(JSON.stringify({ pid: linkbox.pid, url: linkbox.url })));
setInterval(() => {}, 1000);`,
      ],
      { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let entry;
    try {
      const line = await new Promise((resolve, reject) => {
        let text = '';
        node.stdout.on('data', (chunk) => {
          text += chunk;
          if (text.includes('\n')) resolve(text.split('\n')[0]);
        });
        node.once('exit', (code) => reject(new Error(`the Node process exited (${code}): ${text}`)));
      });
      entry = JSON.parse(line);
      assert.ok(await answers(entry.url));
      const exited = new Promise((resolve) => node.once('exit', resolve));
      node.kill(signal);
      await exited;
      assert.ok(await gone(entry.pid), `linkbox ${entry.pid} outlived its Node process (${signal})`);
      assert.equal(await answers(entry.url), false, `${entry.url} still answers`);
    } finally {
      node.kill('SIGKILL');
      if (entry && !(await gone(entry.pid, 0))) process.kill(entry.pid, 'SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('parallel test files each get their own linkbox', async () => {
  const dir = scratch();
  try {
    for (const name of ['a', 'b', 'c']) {
      fs.writeFileSync(
        path.join(dir, `${name}.test.js`),
        `${RECORD}
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startLinkbox } = require('linkbox');
let linkbox;
before(async () => { linkbox = await startLinkbox(); });
after(() => linkbox.stop());
test('creates a link and sees only its own', async () => {
  const tenant = await linkbox.tenant();
  const response = await fetch(linkbox.url + '/partner/links', {
    method: 'POST', headers: { ...tenant.m2mHeaders, 'Content-Type': 'application/json' },
    body: JSON.stringify({ referenceId: '${name}' }),
  });
  assert.equal(response.status, 201);
  // The whole sandbox (admin view) holds this file's link alone.
  const journal = await linkbox.requests({ path: '/partner/*' });
  assert.deepEqual(journal.map((entry) => entry.path), ['/partner/links']);
  record(linkbox, { file: '${name}', worker: process.pid });
});
`,
      );
    }
    const result = run(dir, ['--test', '--test-concurrency=3', 'a.test.js', 'b.test.js', 'c.test.js']);
    assert.equal(result.status, 0, result.stdout + result.stderr);
    const entries = records(result.recordTo);
    assert.equal(entries.length, 3);
    assert.equal(new Set(entries.map((entry) => entry.url)).size, 3);
    assert.equal(new Set(entries.map((entry) => entry.worker)).size, 3);
    for (const entry of entries) {
      assert.ok(await gone(entry.pid), `linkbox ${entry.pid} outlived its test file`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
