/** Helpers for the scheduler suites: a fake cluster with schedulers on it, and polling. */
import type { Clock } from '../../src/common/clock.js';
import type { Discovery } from '../../src/discovery/discovery.js';
import type { StateStore } from '../../src/scheduler/backoff-ledger.js';
import { MemoryFormationSource } from '../../src/scheduler/memory-formation-source.js';
import { startScheduler, type Scheduler, type SchedulerOptions } from '../../src/scheduler/scheduler.js';
import { FakeCluster, type FakeClusterOptions } from '../../src/scheduler/testing/fake-hosts.js';
import type { Formation, SchedulerEvent } from '../../src/scheduler/types.js';

/** Fast timing for the fake loop: hosts expire after 1 s, a dead leader after 1 s. */
export const FAST_TIMING: SchedulerOptions['timing'] = {
  resyncMs: 200,
  leaderTtlMs: 1000,
  hostRetryMs: 50,
  hostReadyTimeoutMs: 2000,
  rebalanceSettleMs: 300,
  backoff: { immediateRestarts: 2, initialDelayMs: 100, factor: 2, maxDelayMs: 400, resetAfterMs: 10_000 },
};

export function webFormation(count: number, extra: Partial<Formation> = {}): Formation {
  return {
    app: 'shop',
    release: 'v1',
    processes: { web: count },
    spec: { web: { image: 'flynn-ts/runtime:latest', cmd: ['start', 'web'], ports: [{ port: 8080, service: 'shop-web' }] } },
    ...extra,
  };
}

export async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Collects a scheduler's events into an array for assertions. */
export function record(scheduler: Scheduler): SchedulerEvent[] {
  const events: SchedulerEvent[] = [];
  void (async () => {
    for await (const e of scheduler.events()) events.push(e);
  })();
  return events;
}

export interface Rig {
  cluster: FakeCluster;
  formations: MemoryFormationSource;
  start(id: string, discovery?: Discovery): Promise<Scheduler>;
  close(): Promise<void>;
}

/** A fake cluster, a formation source, and `start()` for scheduler instances on it (sharing `clock` and `state` when given). */
export function rig(options: FakeClusterOptions = {}, timing = FAST_TIMING, clock?: Clock, state?: StateStore): Rig {
  const cluster = new FakeCluster(options);
  const formations = new MemoryFormationSource();
  const schedulers: Scheduler[] = [];
  return {
    cluster,
    formations,
    async start(id, discovery) {
      const s = await startScheduler({ id, discovery: discovery ?? cluster.mortal(), formations, connectHost: cluster.connector, timing, ...(clock ? { clock } : {}), ...(state ? { state } : {}) });
      schedulers.push(s);
      return s;
    },
    async close() {
      await Promise.all(schedulers.map((s) => s.close()));
      await cluster.close();
    },
  };
}

/** Wait until `scheduler` leads. */
export function leading(scheduler: Scheduler, timeoutMs = 5000): Promise<true> {
  return waitFor(`${scheduler.id} to lead`, () => scheduler.leading, timeoutMs);
}
