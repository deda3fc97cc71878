/** Small job commands shared by the conformance suites and tests: each runs under `node -e`. */
import { createServer } from 'node:net';

/** An HTTP server on $PORT answering `hello from <FLYNN_JOB_ID>` (and its flynn env at `/env`); logs one stdout and one stderr line. */
export const HTTP_SERVER_CMD = [
  'node',
  '-e',
  `const http = require('http');
process.on('SIGTERM', () => { console.log('got SIGTERM'); process.exit(0); });
process.on('SIGUSR1', () => console.log('got SIGUSR1'));
const pick = ['PORT', 'FLYNN_APP', 'FLYNN_PROCESS_TYPE', 'FLYNN_JOB_ID', 'HOSTNAME'];
http.createServer((req, res) => res.end(req.url === '/env' ? JSON.stringify(Object.fromEntries(pick.map((k) => [k, process.env[k]]))) : 'hello from ' + process.env.FLYNN_JOB_ID)).listen(Number(process.env.PORT), () => {
  console.log('listening on ' + process.env.PORT);
  console.error('this goes to stderr');
});`,
];

/** Exits with `code` after printing a line. */
export function crashCmd(code: number): string[] {
  return ['node', '-e', `console.error('about to fail'); setTimeout(() => process.exit(${code}), 100);`];
}

/** Allocates memory until killed. */
export const MEMORY_HOG_CMD = ['node', '-e', `const keep = []; setInterval(() => { for (let i = 0; i < 16; i++) keep.push(Buffer.alloc(1 << 20, 1)); }, 20);`];

/** Ignores SIGTERM, so only SIGKILL stops it. */
export const STUBBORN_CMD = ['node', '-e', `process.on('SIGTERM', () => console.log('ignoring SIGTERM')); setInterval(() => {}, 1000); console.log('started');`];

/** Prints `count` numbered lines, waits `pauseMs`, prints `count` more, exits 0. */
export function chattyCmd(count: number, pauseMs: number): string[] {
  return ['node', '-e', `for (let i = 1; i <= ${count}; i++) console.log('line ' + i); setTimeout(() => { for (let i = ${count} + 1; i <= ${2 * count}; i++) console.log('line ' + i); }, ${pauseMs});`];
}

/** A free TCP port on `host`, as the OS picks it. */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host, port: 0 }, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** GET `url` until it answers 2xx or `timeoutMs` passes; returns the body. Each try is bounded. */
export async function fetchWhenUp(url: string, timeoutMs = 15_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return await res.text();
      last = new Error(`HTTP ${res.status}`);
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms: ${(last as Error)?.message}`);
}
