#!/usr/bin/env node
'use strict';
// `npx linkbox ...`: runs this platform's linkbox binary with the same arguments and stdio,
// passes signals on, stops it when whoever started this script goes away, and exits as it
// exits.

const { spawn } = require('node:child_process');
const { binaryPath } = require('../binary.js');

let binary;
try {
  binary = binaryPath();
} catch (error) {
  process.stderr.write(`linkbox: ${error.message}\n`);
  process.exit(1);
}

const child = spawn(binary, process.argv.slice(2), { stdio: 'inherit' });
const forward = (signal) => child.kill(signal);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, forward);
}
// `npx` runs this script under `sh -c` and, when it is killed itself, takes only that shell
// down: this script then belongs to another parent, and linkbox must not outlive it.
const parent = process.ppid;
const watch = setInterval(() => {
  if (process.ppid !== parent) child.kill('SIGTERM');
}, 500);
watch.unref();
child.on('error', (error) => {
  process.stderr.write(`linkbox: cannot run ${binary}: ${error.message}\n`);
  process.exit(1);
});
child.on('exit', (code, signal) => {
  if (signal) {
    // Die of the same signal, so that the caller sees what linkbox saw.
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
    return;
  }
  process.exit(code === null ? 1 : code);
});
