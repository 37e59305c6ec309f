'use strict';
// Shared by the package's own tests: a webhook receiver on a loopback port, as a partner
// would run one, and a check that a process id is gone.

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

/** Whether a process with this id still exists. */
function isRunning(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
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

module.exports = { startReceiver, settledDeliveries, isRunning, gone };
