/**
 * Failover under a backend SIGKILL: wrk (GET, keep-alive) through one router in front of three
 * backend processes, one of which is SIGKILLed mid-run while it stays registered in discovery (as
 * a job does until its TTL ends). Prints wrk's totals and the failed requests (non-2xx + socket
 * errors): with passive ejection and failover to another backend there should be none.
 *
 *   node --import tsx bench/router/failover.ts
 *   BENCH_DURATION=10s BENCH_KILL_AFTER_MS=3000 BENCH_BACKEND_DELAY_MS=5 node --import tsx bench/router/failover.ts
 *   BENCH_SIGNAL=SIGSTOP ...                                  # a frozen backend instead of a dead one
 *   BENCH_SIGNAL=SIGUSR2 ...                                  # a backend that closes connections without answering
 *   BENCH_SIGNAL=SIGSTOP BENCH_RESPONSE_HEADERS_TIMEOUT_MS=1000 ...  # with a short response-headers timeout
 *   BENCH_SIGNAL=SIGSTOP BENCH_HEALTH_CHECK_MS=500 ...        # with an active health check every 500 ms
 *   BENCH_ROUTER_SRC=/path/to/other/src/router/index.ts ...   # measure another tree (e.g. main)
 *
 * The same file is also the backend processes (`--backend`).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

const self = fileURLToPath(import.meta.url);
const HOST = 'failover.test';

function runBackend(): void {
  // A small think time, as a real app has, so that requests are in flight on the victim when it dies.
  const delay = Number(process.env.BENCH_BACKEND_DELAY_MS ?? 5);
  // SIGUSR2 breaks it: from then on it closes every connection without answering (a crashing app).
  let broken = false;
  process.on('SIGUSR2', () => (broken = true));
  const server = createServer((req, res) => {
    if (broken) return void req.socket.destroy();
    setTimeout(() => res.end('ok\n'), delay);
  });
  server.keepAliveTimeout = 65_000;
  server.listen(0, '127.0.0.1', () => process.stdout.write(`PORT ${(server.address() as AddressInfo).port}\n`));
}

function startBackend(): Promise<{ child: ChildProcess; addr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', self, '--backend'], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /PORT (\d+)/.exec(out);
      if (m) resolve({ child, addr: `127.0.0.1:${m[1]}` });
    });
    child.once('exit', (code) => reject(new Error(`backend exited with ${code}`)));
  });
}

async function main(): Promise<void> {
  if (spawnSync('sh', ['-c', 'command -v wrk']).status !== 0) {
    console.error('wrk is missing: apt-get install -y wrk');
    process.exit(2);
  }
  const duration = process.env.BENCH_DURATION ?? '10s';
  const killAfter = Number(process.env.BENCH_KILL_AFTER_MS ?? 3000);
  // SIGSTOP freezes the victim as `docker pause` does: connections are accepted, never answered.
  const signal = (process.env.BENCH_SIGNAL ?? 'SIGKILL') as NodeJS.Signals;
  const src = process.env.BENCH_ROUTER_SRC ?? '../../src/router/index.js';
  const { createDiscovery } = await import('../../src/discovery/index.js');
  const { MemoryRouteSource, startRouter } = (await import(src)) as typeof import('../../src/router/index.js');
  const backends = await Promise.all([startBackend(), startBackend(), startBackend()]);
  const discovery = createDiscovery({ backend: 'memory' });
  for (const b of backends) await discovery.register({ service: 'failover-web', addr: b.addr, ttlMs: 3_600_000 });
  // BENCH_HEALTH_CHECK_MS=N: an active health check (GET /) every N ms, timing out after N ms.
  const checkMs = Number(process.env.BENCH_HEALTH_CHECK_MS ?? 0);
  const healthCheck = checkMs > 0 ? { healthCheck: { path: '/', intervalMs: checkMs, timeoutMs: checkMs } } : {};
  const routes = new MemoryRouteSource([{ id: 'failover', type: 'http', domain: HOST, service: 'failover-web', ...healthCheck }]);
  const headersMs = process.env.BENCH_RESPONSE_HEADERS_TIMEOUT_MS;
  const router = await startRouter({ discovery, routes, http: { host: '127.0.0.1', port: 0 }, ...(headersMs ? { responseHeadersTimeoutMs: Number(headersMs) } : {}) });
  const victim = backends[2] as { child: ChildProcess; addr: string };
  const wrk = spawn('wrk', ['-t2', '-c50', `-d${duration}`, '-H', `Host: ${HOST}`, router.http.url + '/'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  wrk.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  const timer = setTimeout(() => victim.child.kill(signal), killAfter);
  await new Promise((resolve) => wrk.once('exit', resolve));
  clearTimeout(timer);
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const socketErrors = sock ? sock.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0;
  // wrk does not count a request that never ends: the router does (still in flight after wrk).
  const hanging = router.inFlight();
  console.log(out.trim());
  console.log(`failover: ${requests} requests, backend ${victim.addr} ${signal} after ${killAfter} ms, failed: ${non2xx + socketErrors} (non-2xx ${non2xx}, socket errors ${socketErrors}), hanging: ${hanging}`);
  await router.close().catch(() => undefined);
  await discovery.close();
  for (const b of backends) b.child.kill('SIGKILL');
  process.exit(0);
}

if (process.argv.includes('--backend')) runBackend();
else await main();
