/**
 * Scheduler benchmark on fake host agents (in-memory jobs, 1 ms API latency, 2 ms per job state
 * step) over the in-memory discovery. Measures the scheduler's own reaction, not container start:
 *   scale:     web=1 → 8 over 3 hosts, until all 8 are up
 *   host-loss: SIGKILL-like death of one host (registration left to expire, TTL 2 s) → all 8 up again
 *   failover:  death of the leading scheduler (leader TTL 2 s) → the other leads and a scale 8→9 is up
 * Medians over 5 runs.
 *
 * Then the same on real hosts: 3 host agent processes (examples/host/main.ts, process runtime) on
 * 127.0.0.2-4 at their default registration TTL, one scheduler process, discovery on etcd; "up"
 * means every job answers HTTP at the address it published in discovery:
 *   scale:     web=1 → 8, until all 8 answer
 *   host-loss: SIGKILL one whole host (its agent and its job processes) while wrk (1 thread, 8
 *              connections, keep-alive GETs) loads a router in front of the app → all 8 answering
 *              again on the other two; wrk's failed requests (non-2xx + socket errors) counted
 * Skipped (with a note) when etcd does not answer; the wrk load is left out when wrk is missing.
 */
import { MemoryFormationSource } from '../../src/scheduler/memory-formation-source.js';
import { startScheduler } from '../../src/scheduler/scheduler.js';
import { FakeCluster } from '../../src/scheduler/testing/fake-hosts.js';
import type { Formation } from '../../src/scheduler/types.js';
import { needEtcd } from '../../test/support/services.js';
import { spawn, spawnSync } from 'node:child_process';
import { MemoryRouteSource, startRouter, type Router } from '../../src/router/index.js';
import { HOST_TTL_MS as REAL_HOST_TTL_MS, RealCluster, until as untilAsync } from '../../test/scheduler/support-cluster.js';

const RUNS = 5;
const HOST_TTL_MS = 2000;

const formation = (web: number): Formation => ({
  app: 'bench',
  release: 'v1',
  processes: { web },
  spec: { web: { image: 'flynn-ts/runtime:latest', cmd: ['start', 'web'] } },
});

async function until(probe: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error('benchmark step timed out');
    await new Promise((r) => setTimeout(r, 1));
  }
}

const upCount = (cluster: FakeCluster) => cluster.liveJobs('web').filter((j) => j.state === 'up').length;

async function failover(): Promise<number> {
  const cluster = new FakeCluster({ latencyMs: 1, stepMs: 2 });
  for (const id of ['h1', 'h2', 'h3']) await cluster.addHost({ id, ttlMs: HOST_TTL_MS });
  const formations = new MemoryFormationSource([formation(8)]);
  const timing = { leaderTtlMs: 2000, resyncMs: 1000, hostRetryMs: 50 };
  const aDisc = cluster.mortal();
  const a = await startScheduler({ id: 'a', discovery: aDisc, formations, connectHost: cluster.connector, timing });
  await until(() => a.leading && upCount(cluster) === 8);
  const b = await startScheduler({ id: 'b', discovery: cluster.mortal(), formations, connectHost: cluster.connector, timing });
  try {
    const t0 = performance.now();
    aDisc.die();
    await a.close();
    formations.scale('bench', 'v1', { web: 9 });
    await until(() => b.leading && upCount(cluster) === 9);
    return performance.now() - t0;
  } finally {
    await b.close();
    await cluster.close();
  }
}

async function once(): Promise<{ scaleMs: number; lossMs: number }> {
  const cluster = new FakeCluster({ latencyMs: 1, stepMs: 2 });
  const hosts = [];
  for (const id of ['h1', 'h2', 'h3']) hosts.push(await cluster.addHost({ id, ttlMs: HOST_TTL_MS }));
  const formations = new MemoryFormationSource([formation(1)]);
  const scheduler = await startScheduler({
    id: 'bench',
    discovery: cluster.mortal(),
    formations,
    connectHost: cluster.connector,
    timing: { leaderTtlMs: 2000, resyncMs: 1000, hostRetryMs: 50 },
  });
  try {
    await until(() => upCount(cluster) === 1);
    const t0 = performance.now();
    formations.scale('bench', 'v1', { web: 8 });
    await until(() => upCount(cluster) === 8);
    const scaleMs = performance.now() - t0;
    const t1 = performance.now();
    hosts[0]?.kill();
    await until(() => upCount(cluster) === 8 && (cluster.hosts.get('h1')?.live().length ?? 0) === 0 && scheduler.view().hosts.length === 2);
    const lossMs = performance.now() - t1;
    return { scaleMs, lossMs };
  } finally {
    await scheduler.close();
    await cluster.close();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const scale: number[] = [];
const loss: number[] = [];
for (let i = 0; i < RUNS; i++) {
  const r = await once();
  scale.push(r.scaleMs);
  loss.push(r.lossMs);
}
const fail: number[] = [];
for (let i = 0; i < RUNS; i++) fail.push(await failover());
const mFail = median(fail);
const mScale = median(scale);
const mLoss = median(loss);
console.log(`scale web=1→8 over 3 fake hosts, all up:   median ${mScale.toFixed(1)} ms  (runs: ${scale.map((x) => x.toFixed(1)).join(', ')})`);
console.log(`host loss → all 8 up again (host TTL ${HOST_TTL_MS} ms): median ${mLoss.toFixed(0)} ms  (runs: ${loss.map((x) => x.toFixed(0)).join(', ')})`);
console.log(`ratio host-loss recovery / host TTL: ${(mLoss / HOST_TTL_MS).toFixed(2)} (≈1: the TTL is all the cost; can be < 1 since the lease runs from the last heartbeat, up to TTL/3 before the kill)`);
console.log(`leader death → other leads, scale 8→9 up (leader TTL 2000 ms): median ${mFail.toFixed(0)} ms  (runs: ${fail.map((x) => x.toFixed(0)).join(', ')})`);
console.log(`fake hosts vs targets (issue 4): scale < 2000 ms → ${(mScale / 2000).toFixed(3)} of budget; host loss < 3000 ms → ${(mLoss / 3000).toFixed(2)} of budget`);

const HAVE_WRK = spawnSync('sh', ['-c', 'command -v wrk']).status === 0;

/** Run wrk against `url` for `seconds`; resolves with its request count and failed requests. */
function wrk(url: string, host: string, seconds: number): Promise<{ requests: number; failed: number }> {
  const child = spawn('wrk', ['-t1', '-c8', `-d${seconds}s`, '-H', `Host: ${host}`, url], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  return new Promise((resolve) =>
    child.once('exit', () => {
      const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
      const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
      const socketErrors = sock ? sock.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0;
      resolve({ requests: Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN), failed: non2xx + socketErrors });
    }),
  );
}

interface RealRun {
  scaleMs: number;
  lossMs: number;
  /** Kill → the scheduler's `host-lost` (the registration's expiry). */
  detectMs: number;
  /** `host-lost` events for hosts that were never killed. */
  falseLosses: number;
  load?: { requests: number; failed: number };
}

async function real(): Promise<RealRun> {
  const c = new RealCluster('process');
  let router: Router | undefined;
  try {
    await Promise.all([c.addAgent('h1', '127.0.0.2'), c.addAgent('h2', '127.0.0.3'), c.addAgent('h3', '127.0.0.4')]);
    const s = await c.addScheduler('bench');
    await untilAsync('the scheduler to lead', () => s.leading, 10_000);
    const app = c.app('bench');
    c.put(c.webFormation(app, 1));
    await c.allAnswering(app, 1);
    const t0 = performance.now();
    c.scale(app, { web: 8 });
    await c.allAnswering(app, 8);
    const scaleMs = performance.now() - t0;
    const domain = `${app}.bench.test`;
    const routes = new MemoryRouteSource([{ id: 'bench', type: 'http', domain, service: `${app}-web` }]);
    router = await startRouter({ discovery: c.discovery, routes, http: { host: '127.0.0.1', port: 0 } });
    const load = HAVE_WRK ? wrk(router.http.url + '/', domain, 8) : undefined;
    await new Promise((r) => setTimeout(r, 1500)); // wrk under way
    const victim = (await c.liveJobs(app, 'web')).find((j) => j.host !== 'h1')?.host ?? 'h2';
    const t1 = performance.now();
    const killedAt = Date.now();
    await c.killHost(victim);
    await untilAsync('8 answering on the 2 live hosts', async () => {
      const per = await c.upPerHost(app);
      return Object.keys(per).length === 2 && !(victim in per);
    });
    await c.allAnswering(app, 8);
    const lossMs = performance.now() - t1;
    const lost = s.events.find((e) => e.event.type === 'host-lost' && e.at >= killedAt);
    // A host-lost for a host that lives: a heartbeat stalled past the TTL on this loaded machine.
    const victimId = c.agents.get(victim)?.id;
    const falseLosses = s.events.filter((e) => e.event.type === 'host-lost' && e.event.hostId !== victimId).length;
    return { scaleMs, lossMs, detectMs: lost ? lost.at - killedAt : NaN, falseLosses, ...(load ? { load: await load } : {}) };
  } finally {
    await router?.close();
    await c.close();
  }
}

if (await needEtcd('scheduler benchmark on real hosts')) {
  const rScale: number[] = [];
  const rLoss: number[] = [];
  const rDetect: number[] = [];
  let falseLosses = 0;
  const loads: { requests: number; failed: number }[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = await real();
    rScale.push(r.scaleMs);
    rLoss.push(r.lossMs);
    rDetect.push(r.detectMs);
    falseLosses += r.falseLosses;
    if (r.load) loads.push(r.load);
  }
  const mrScale = median(rScale);
  const mrLoss = median(rLoss);
  console.log(`real: scale web=1→8 over 3 agent processes (process runtime, etcd), all 8 answering: median ${mrScale.toFixed(0)} ms  (runs: ${rScale.map((x) => x.toFixed(0)).join(', ')})`);
  console.log(`real: host SIGKILL (agent + its jobs) → all 8 answering again (default host TTL ${REAL_HOST_TTL_MS} ms): median ${mrLoss.toFixed(0)} ms  (runs: ${rLoss.map((x) => x.toFixed(0)).join(', ')})`);
  console.log(`real: of which host SIGKILL → scheduler's host-lost (registration expired): median ${median(rDetect).toFixed(0)} ms  (runs: ${rDetect.map((x) => x.toFixed(0)).join(', ')})`);
  console.log(`real: false host losses (a live host's heartbeats late past the TTL) over the ${RUNS} runs: ${falseLosses}`);
  if (loads.length > 0) {
    console.log(`real: failed requests under wrk -t1 -c8 through a router during the host SIGKILL: ${loads.map((l) => `${l.failed} of ${l.requests}`).join(', ')}`);
  } else console.log('real: no wrk (apt-get install -y wrk): the load during the host SIGKILL was left out');
  console.log(`real vs fake: scale ${(mrScale / mScale).toFixed(1)}×, host loss ${(mrLoss / mLoss).toFixed(2)}×`);
  console.log(`targets (issues 4, 16): scale < 2000 ms → ${(mrScale / 2000).toFixed(2)} of budget; host loss < 3000 ms → ${(mrLoss / 3000).toFixed(2)} of budget`);
}
