'use strict';
// Bad input and failure: a missing or non-executable binary, a port in use, linkbox exiting
// or hanging before it prints its address, an unsupported platform. Each rejects with a
// StartError carrying linkbox's own stderr, in bounded time, with no process left behind.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { startLinkbox, binaryPath, StartError, LinkboxError } = require('linkbox');
const { isRunning } = require('./helpers.js');

function scratch() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'linkbox-test-'));
}

test('a missing binary is named', async () => {
  await assert.rejects(startLinkbox({ binary: '/nonexistent/linkbox' }), (error) => {
    assert.ok(error instanceof StartError);
    assert.match(error.message, /\/nonexistent\/linkbox does not exist/);
    assert.equal(error.pid, null);
    return true;
  });
});

test('the env given chooses the binary', async () => {
  // Its LINKBOX_BINARY wins over this process's; without one, this process's still counts.
  const env = { ...process.env, LINKBOX_BINARY: '/nonexistent/from-env/linkbox' };
  let started;
  await assert.rejects(
    startLinkbox({ env }).then((linkbox) => {
      started = linkbox;
      return linkbox;
    }),
    (error) => {
      assert.ok(error instanceof StartError);
      assert.match(error.message, /\/nonexistent\/from-env\/linkbox does not exist/);
      return true;
    },
  ).finally(() => started?.stop());
  const linkbox = await startLinkbox({ env: { PATH: process.env.PATH } });
  try {
    assert.equal(linkbox.running, true);
  } finally {
    await linkbox.stop();
  }
});

test('a binary that is not executable is named', async (t) => {
  const binary = path.join(scratch(), 'linkbox');
  fs.writeFileSync(binary, fs.readFileSync(binaryPath()).subarray(0, 4096), { mode: 0o644 });
  try {
    fs.accessSync(binary, fs.constants.X_OK);
    t.skip('this user may execute any file');
    return;
  } catch {
    // Not executable, as intended.
  }
  await assert.rejects(startLinkbox({ binary }), (error) => {
    assert.ok(error instanceof StartError);
    assert.match(error.message, /is not executable/);
    assert.ok(error.message.includes(binary));
    return true;
  });
});

test('a port in use fails with linkbox\'s stderr', async () => {
  const taken = net.createServer();
  await new Promise((resolve) => taken.listen(0, '127.0.0.1', resolve));
  const { port } = taken.address();
  try {
    await assert.rejects(startLinkbox({ addr: `127.0.0.1:${port}` }), (error) => {
      assert.ok(error instanceof StartError);
      assert.ok(error.stderr.includes(`cannot listen on 127.0.0.1:${port}`), error.stderr);
      assert.ok(error.message.includes(error.stderr));
      assert.equal(error.exitCode, 1);
      assert.equal(isRunning(error.pid), false);
      return true;
    });
  } finally {
    taken.close();
  }
});

test('exiting before the address fails with linkbox\'s stderr', async () => {
  const config = path.join(scratch(), 'linkbox.toml');
  fs.writeFileSync(config, "[[partners]]\nslug = 'Not A Slug'\n");
  await assert.rejects(startLinkbox({ config }), (error) => {
    assert.ok(error instanceof StartError);
    assert.match(error.message, /exited before printing its address \(exit status 1\)/);
    assert.match(error.stderr, /linkbox:/);
    assert.ok(error.message.includes(error.stderr));
    assert.equal(isRunning(error.pid), false);
    return true;
  });
});

test('an unknown flag fails with the usage message', async () => {
  await assert.rejects(startLinkbox({ args: ['--no-such-flag'] }), (error) => {
    assert.ok(error instanceof StartError);
    assert.match(error.message, /--no-such-flag/);
    assert.equal(error.exitCode, 2);
    return true;
  });
});

test('a process that never prints its address is stopped in bounded time', async () => {
  const fake = path.join(scratch(), 'linkbox');
  fs.writeFileSync(fake, "#!/bin/sh\necho 'warming up forever' >&2\nexec sleep 60\n", { mode: 0o755 });
  const started = Date.now();
  await assert.rejects(startLinkbox({ binary: fake, startTimeoutMs: 1000 }), (error) => {
    assert.ok(error instanceof StartError);
    assert.match(error.message, /printed no address within 1000 ms/);
    assert.match(error.message, /warming up forever/);
    assert.equal(isRunning(error.pid), false);
    return true;
  });
  assert.ok(Date.now() - started < 10_000);
});

test('a process that ignores SIGTERM is killed', async () => {
  const fake = path.join(scratch(), 'linkbox');
  fs.writeFileSync(
    fake,
    "#!/bin/sh\ntrap '' TERM\necho 'listening on http://127.0.0.1:9'\nwhile :; do sleep 0.1; done\n",
    { mode: 0o755 },
  );
  const linkbox = await startLinkbox({ binary: fake, stopTimeoutMs: 1000 });
  assert.equal(linkbox.url, 'http://127.0.0.1:9');
  const started = Date.now();
  await linkbox.stop();
  assert.ok(Date.now() - started < 10_000);
  assert.equal(isRunning(linkbox.pid), false);
});

test('calls to a linkbox that died say so with its stderr', async () => {
  const linkbox = await startLinkbox();
  try {
    process.kill(linkbox.pid, 'SIGKILL');
    const deadline = Date.now() + 10_000;
    while (linkbox.running && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await assert.rejects(linkbox.webhooks(), (error) => {
      assert.ok(error instanceof LinkboxError);
      assert.match(error.message, /linkbox is not running \(SIGKILL\)/);
      return true;
    });
  } finally {
    await linkbox.stop();
  }
});

test('other platforms are a clear error naming the supported ones', () => {
  assert.throws(
    () => binaryPath({ platform: 'darwin', arch: 'arm64', env: {} }),
    /no binary for darwin-arm64; supported platforms: linux-x64/,
  );
  assert.equal(binaryPath({ env: { LINKBOX_BINARY: '/opt/linkbox' } }), '/opt/linkbox');
});

test('a missing platform package is a StartError naming it', () => {
  // The linkbox package alone, in a project where @linkbox/linux-x64 was not installed.
  const project = scratch();
  fs.cpSync(path.dirname(require.resolve('linkbox/package.json')), path.join(project, 'node_modules', 'linkbox'), {
    recursive: true,
  });
  const script = path.join(project, 'start.js');
  fs.writeFileSync(
    script,
    `const { startLinkbox, StartError } = require('linkbox');
startLinkbox().then(
  (linkbox) => linkbox.stop().then(() => console.log(JSON.stringify({ started: true }))),
  (error) => console.log(JSON.stringify({ name: error.name, isStartError: error instanceof StartError, message: error.message })),
);
`,
  );
  const env = { ...process.env };
  delete env.LINKBOX_BINARY;
  delete env.NODE_PATH;
  const outcome = JSON.parse(execFileSync(process.execPath, [script], { cwd: project, env, encoding: 'utf8' }));
  assert.equal(outcome.isStartError, true, JSON.stringify(outcome));
  assert.equal(outcome.name, 'StartError');
  assert.match(outcome.message, /@linkbox\/linux-x64/);
  assert.match(outcome.message, /LINKBOX_BINARY/);
});

test('a fresh tenant where the config names the partners is a clear error', async () => {
  const config = path.join(scratch(), 'linkbox.toml');
  fs.writeFileSync(config, "[[partners]]\nslug = 'acme'\nkeys = ['m2m_test_acme0000000000000000000000000000']\n");
  const linkbox = await startLinkbox({ config });
  try {
    await assert.rejects(linkbox.tenant(), /a fresh tenant needs open mode/);
  } finally {
    await linkbox.stop();
  }
});
