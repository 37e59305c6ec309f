'use strict';
// Shared by the package's own tests: a webhook receiver on a loopback port, as a partner
// would run one, and checks that a process id or a sandbox's URL is gone.

const fs = require('node:fs');
const http = require('node:http');

/** Records every POST and answers 200. */
async function startReceiver() {
  const received = [];
  const waiting = [];
  const server = http.createServer((request, response) => {
    const chunks = [];
    request.on('data', (chunk) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks);
      received.push({ path: request.url, headers: request.headers, body, json: JSON.parse(body.toString('utf8')) });
      response.writeHead(200).end();
      for (const wake of waiting.splice(0)) wake();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    received,
    async waitFor(event, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hit = received.find((item) => item.headers['x-m2m-event'] === event);
        if (hit) return hit;
        const left = deadline - Date.now();
        if (left <= 0) {
          const seen = received.map((item) => item.headers['x-m2m-event']);
          throw new Error(`no ${event} webhook within ${timeoutMs} ms (got ${JSON.stringify(seen)})`);
        }
        await new Promise((resolve) => {
          waiting.push(resolve);
          setTimeout(resolve, left);
        });
      }
    },
    close() {
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** The tenant's webhook deliveries once none is `pending`, or as they are after `timeoutMs`. */
async function settledDeliveries(tenant, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const deliveries = await tenant.webhooks();
    if (deliveries.every((delivery) => delivery.status !== 'pending') || Date.now() > deadline) return deliveries;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Whether a process with this id still exists; a zombie does not count (a process whose
 * parent was killed is reaped by whoever adopts it, if at all).
 */
function isRunning(pid) {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return error.code === 'EPERM';
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] !== 'Z';
  } catch {
    return true;
  }
}

/** Whether something answers `GET url/_sandbox/health`. */
function answers(url) {
  return fetch(`${url}/_sandbox/health`, { signal: AbortSignal.timeout(2_000) }).then(
    () => true,
    () => false,
  );
}

/** Waits until `pid` is gone or `timeoutMs` passed; whether it is gone. */
async function gone(pid, timeoutMs = 5_000) {
  const deadline = Date.now() + timeoutMs;
  while (isRunning(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return true;
}

module.exports = { startReceiver, settledDeliveries, isRunning, gone, answers };
