/**
 * Scheduler benchmark on fake host agents (in-memory jobs, 1 ms API latency, 2 ms per job state
 * step) over the in-memory discovery. Measures the scheduler's own reaction, not container start:
 *   scale:     web=1 → 8 over 3 hosts, until all 8 are up
 *   host-loss: SIGKILL-like death of one host (registration left to expire, TTL 2 s) → all 8 up again
 *   failover:  death of the leading scheduler (leader TTL 2 s) → the other leads and a scale 8→9 is up
 * Medians over 5 runs.
 *
 * Then the same on real hosts: 3 host agent processes (examples/host/main.ts, process runtime) on
 * 127.0.0.2-4, one scheduler process, discovery on etcd (host TTL 2 s); "up" means every job
 * answers HTTP at the address it published in discovery:
 *   scale:     web=1 → 8, until all 8 answer
 *   host-loss: SIGKILL one agent process → all 8 answering again on the other two
 * Skipped (with a note) when etcd does not answer.
 */
import { MemoryFormationSource } from '../../src/scheduler/memory-formation-source.js';
import { startScheduler } from '../../src/scheduler/scheduler.js';
import { FakeCluster } from '../../src/scheduler/testing/fake-hosts.js';
import type { Formation } from '../../src/scheduler/types.js';
import { needEtcd } from '../../test/support/services.js';
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

async function real(): Promise<{ scaleMs: number; lossMs: number }> {
  const c = new RealCluster('process');
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
    const victim = (await c.liveJobs(app, 'web')).find((j) => j.host !== 'h1')?.host ?? 'h2';
    const t1 = performance.now();
    c.killAgent(victim);
    await untilAsync('8 answering on the 2 live hosts', async () => {
      const per = await c.upPerHost(app);
      return Object.keys(per).length === 2 && !(victim in per);
    });
    await c.allAnswering(app, 8);
    const lossMs = performance.now() - t1;
    return { scaleMs, lossMs };
  } finally {
    await c.close();
  }
}

if (await needEtcd('scheduler benchmark on real hosts')) {
  const rScale: number[] = [];
  const rLoss: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = await real();
    rScale.push(r.scaleMs);
    rLoss.push(r.lossMs);
  }
  const mrScale = median(rScale);
  const mrLoss = median(rLoss);
  console.log(`real: scale web=1→8 over 3 agent processes (process runtime, etcd), all 8 answering: median ${mrScale.toFixed(0)} ms  (runs: ${rScale.map((x) => x.toFixed(0)).join(', ')})`);
  console.log(`real: host agent SIGKILL → all 8 answering again (host TTL ${REAL_HOST_TTL_MS} ms): median ${mrLoss.toFixed(0)} ms  (runs: ${rLoss.map((x) => x.toFixed(0)).join(', ')})`);
  console.log(`real vs fake: scale ${(mrScale / mScale).toFixed(1)}×, host loss ${(mrLoss / mLoss).toFixed(2)}×`);
  console.log(`targets (issue 4): scale < 2000 ms → ${(mrScale / 2000).toFixed(2)} of budget; host loss < 3000 ms → ${(mrLoss / 3000).toFixed(2)} of budget`);
}
