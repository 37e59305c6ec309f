#!/usr/bin/env node
'use strict';
// `npx linkbox ...`: runs this platform's linkbox binary with the same arguments and stdio,
// passes signals on, stops it when whoever started this script goes away, and exits as it
// exits.

const fs = require('node:fs');
const { spawn } = require('node:child_process');
const { binaryPath } = require('../binary.js');

let binary;
try {
  binary = binaryPath();
} catch (error) {
  process.stderr.write(`linkbox: ${error.message}\n`);
  process.exit(1);
}

const args = process.argv.slice(2);
// `serve` gets a stdin pipe only this script holds, and `--stop-with-stdin`: when this script
// goes, even killed with SIGKILL, the pipe closes and linkbox stops. Unless the caller asked
// for --stop-with-stdin itself, with its own stdin.
const ownStdin =
  args[0] === 'serve' &&
  !args.includes('--stop-with-stdin') &&
  !args.includes('--') &&
  process.env.LINKBOX_STOP_WITH_STDIN === undefined;
const child = ownStdin
  ? spawn(binary, [...args, '--stop-with-stdin'], { stdio: ['pipe', 'inherit', 'inherit'] })
  : spawn(binary, args, { stdio: 'inherit' });
if (ownStdin) child.stdin.on('error', () => {});
const forward = (signal) => child.kill(signal);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, forward);
}

/** The parent process id of `pid`, from /proc; null where there is none to read. */
function parentOf(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // pid (comm) state ppid ...: comm may hold spaces and parentheses, so from the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    return Number.isInteger(ppid) ? ppid : null;
  } catch {
    return null;
  }
}

/** Whether `pid` is a shell running `-c` (npm runs this script under `sh -c`). */
function isShellC(pid) {
  try {
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv[1] === '-c';
  } catch {
    return false;
  }
}

// `npx` runs this script under `sh -c`. When npx is stopped with a signal, it takes only
// that shell down: this script then belongs to another parent. When npx is killed outright
// (SIGKILL), the shell survives it and belongs to another parent instead. Either way,
// linkbox must not outlive whoever started it.
const parent = process.ppid;
const grandparent = isShellC(parent) ? parentOf(parent) : null;
const watch = setInterval(() => {
  const orphaned = process.ppid !== parent || (grandparent !== null && parentOf(parent) !== grandparent);
  if (orphaned) {
    clearInterval(watch);
    child.kill('SIGTERM');
  }
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
