/**
 * Register → `up` latency across processes: a child process registers instances one at a time,
 * this process watches the service and measures from just before `register()` in the child to
 * the `up` event here (both read the same system clock). 200 registrations after 10 warm-up ones,
 * for etcd (direct) and http (discovery server on a memory backend). Prints median and p99.
 *
 *   npm run bench -- discovery            (ETCD_ENDPOINTS to point at another etcd)
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createDiscovery, type DiscoveryConfig } from '../../src/discovery/create.js';
import { MemoryDiscovery } from '../../src/discovery/memory-backend.js';
import { startDiscoveryServer } from '../../src/discovery/server.js';
import type { Discovery, Registration } from '../../src/discovery/discovery.js';

const COUNT = 200;
const WARMUP = 10;
const now = () => performance.timeOrigin + performance.now();

if (process.argv[2] === 'registrar') await registrar(JSON.parse(process.argv[3] as string) as DiscoveryConfig, process.argv[4] as string);
else await main();

/** Child side: one registration per `go` line on stdin, stamped with the time just before register(). */
async function registrar(config: DiscoveryConfig, service: string): Promise<void> {
  const discovery = createDiscovery(config);
  const held: Registration[] = [];
  process.stdout.write('ready\n');
  let i = 0;
  for await (const line of createInterface({ input: process.stdin })) {
    if (line !== 'go') break;
    const t0 = now();
    held.push(await discovery.register({ service, addr: `127.0.0.1:${10_000 + i++}`, meta: { t0: String(t0) } }));
  }
  await Promise.all(held.map((r) => r.unregister()));
  await discovery.close();
}

async function measure(label: string, config: DiscoveryConfig, watcher: Discovery): Promise<number[]> {
  const service = `bench-${randomBytes(3).toString('hex')}`;
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), 'registrar', JSON.stringify(config), service], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  if ((await lines.next()).value !== 'ready') throw new Error(`${label}: registrar did not start`);
  const watch = watcher.watch(service);
  const events = watch[Symbol.asyncIterator]();
  await events.next(); // current
  const samples: number[] = [];
  for (let i = 0; i < WARMUP + COUNT; i++) {
    child.stdin.write('go\n');
    for (;;) {
      const { value: event, done } = await events.next();
      if (done) throw new Error(`${label}: watch ended`);
      if (event.type === 'up') {
        if (i >= WARMUP) samples.push(now() - Number(event.instance.meta.t0));
        break;
      }
    }
  }
  child.stdin.end('done\n');
  await new Promise((resolve) => child.once('exit', resolve));
  watch.close();
  return samples;
}

function report(label: string, samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number;
  const median = at(0.5);
  console.log(`${label.padEnd(28)} n=${sorted.length}  median ${median.toFixed(2)} ms  p99 ${at(0.99).toFixed(2)} ms  max ${(sorted.at(-1) as number).toFixed(2)} ms`);
  return median;
}

async function main(): Promise<void> {
  console.log(`register (process A) → up event (process B), ${COUNT} registrations after ${WARMUP} warm-up`);
  const endpoints = (process.env.ETCD_ENDPOINTS ?? 'http://127.0.0.1:2379').split(',');
  const prefix = `/flynn-ts-bench/${randomBytes(3).toString('hex')}`;
  const etcdConfig: DiscoveryConfig = { backend: 'etcd', endpoints, prefix };
  const etcdWatcher = createDiscovery(etcdConfig);
  let etcdMedian: number | undefined;
  try {
    etcdMedian = report('etcd', await measure('etcd', etcdConfig, etcdWatcher));
  } catch (err) {
    console.log(`etcd: not measured (${(err as Error).message})`);
  } finally {
    await etcdWatcher.close();
  }

  const backend = new MemoryDiscovery();
  const server = await startDiscoveryServer({ discovery: backend, host: '127.0.0.1', port: 0 });
  const httpConfig: DiscoveryConfig = { backend: 'http', url: server.url };
  const httpWatcher = createDiscovery(httpConfig);
  let httpMedian: number | undefined;
  try {
    httpMedian = report('http (server on memory)', await measure('http', httpConfig, httpWatcher));
  } finally {
    await httpWatcher.close();
    await server.close();
    await backend.close();
  }

  // The full path a job in a container takes: http client → discovery server → etcd → watcher.
  const etcdBehind = createDiscovery({ ...etcdConfig, prefix: `${prefix}-behind` });
  const front = await startDiscoveryServer({ discovery: etcdBehind, host: '127.0.0.1', port: 0 });
  const frontWatcher = createDiscovery({ backend: 'http', url: front.url });
  try {
    report('http (server on etcd)', await measure('http on etcd', { backend: 'http', url: front.url }, frontWatcher));
  } catch (err) {
    console.log(`http (server on etcd): not measured (${(err as Error).message})`);
  } finally {
    await frontWatcher.close();
    await front.close();
    await etcdBehind.close();
  }

  if (etcdMedian !== undefined) {
    console.log(`\ngoal: a registration seen 'up' by a watcher in another process within 50 ms`);
    console.log(`  etcd median ${etcdMedian.toFixed(1)} ms = ${(etcdMedian / 50).toFixed(2)}x the goal (${etcdMedian < 50 ? 'met' : 'not met'})`);
    if (httpMedian !== undefined) console.log(`  http-over-memory / etcd medians: ${(httpMedian / etcdMedian).toFixed(2)}x`);
  }
}
