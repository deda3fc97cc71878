/**
 * The leader election and takeover suite, with the discovery backend as a parameter: the fast loop
 * runs it on the in-memory registry with handles that die like processes (leadership.test.ts); an
 * etcd run plugs in with handles whose `die()` drops the client without revoking its lease.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ManualClock } from '../../src/common/clock.js';
import { sleep } from '../../src/common/lifecycle.js';
import type { Discovery } from '../../src/discovery/discovery.js';
import type { Scheduler } from '../../src/scheduler/scheduler.js';
import type { SchedulerEvent } from '../../src/scheduler/types.js';
import type { FakeCluster } from '../../src/scheduler/testing/fake-hosts.js';
import { MemoryFormationSource } from '../../src/scheduler/memory-formation-source.js';
import { startScheduler } from '../../src/scheduler/scheduler.js';
import { FAST_TIMING, waitFor, webFormation } from './support.js';

/** A discovery backend for the suite: handles for the schedulers, and a way to kill one like a process. */
export interface LeadershipBackend {
  /** A fresh handle; `die()` stops it without unregistering anything. */
  handle(): Promise<{ discovery: Discovery; die(): void }>;
  /** Where the fake hosts register; their API answers slowly, so a leader that did not wait for job lists would start duplicates. */
  cluster: FakeCluster;
  /** The time of the backend, the fake hosts and the schedulers, when it is a ManualClock; absent: real time. */
  clock?: ManualClock;
  close(): Promise<void>;
}

export function describeLeadership(name: string, makeBackend: () => Promise<LeadershipBackend>): void {
  describe(`scheduler leadership (${name})`, () => {
    let backend: LeadershipBackend;
    const schedulers: Scheduler[] = [];
    afterEach(async () => {
      await Promise.all(schedulers.splice(0).map((s) => s.close()));
      await backend.close();
    });

    const start = async (id: string, formations: MemoryFormationSource, timing = FAST_TIMING) => {
      const h = await backend.handle();
      const clock = backend.clock ? { clock: backend.clock } : {};
      const s = await startScheduler({ id, discovery: h.discovery, formations, connectHost: backend.cluster.connector, timing, ...clock });
      schedulers.push(s);
      return { s, die: h.die, discovery: h.discovery };
    };
    /** Let `ms` of the backend's time pass: at once on a ManualClock, else in real time. */
    const elapse = (ms: number) => (backend.clock ? backend.clock.advance(ms) : sleep(ms));
    const LEADER_TTL_MS = FAST_TIMING!.leaderTtlMs!;

    it('elects exactly one leader among two instances', async () => {
      backend = await makeBackend();
      const formations = new MemoryFormationSource();
      const a = await start('sched-a', formations);
      const b = await start('sched-b', formations);
      await waitFor('a leader', () => a.s.leading || b.s.leading);
      // Both stand (registered in the election); only one acts.
      await vi.waitFor(async () => expect(await a.discovery.instances('flynn-scheduler')).toHaveLength(2), { timeout: 5_000 });
      expect([a.s.leading, b.s.leading].filter(Boolean)).toHaveLength(1);
      const follower = a.s.leading ? b.s : a.s;
      expect(follower.view()).toMatchObject({ leading: false, hosts: [], formations: [] });
      await expect(follower.settle()).rejects.toMatchObject({ code: 'FLYNN_ERR_SCHEDULER_NOT_LEADER' });
    });

    it('when the leader dies the other takes over within the TTL, reads the hosts first and starts no duplicates', async () => {
      backend = await makeBackend();
      for (const id of ['h1', 'h2', 'h3']) await backend.cluster.addHost({ id, ttlMs: 2000 });
      const formations = new MemoryFormationSource([webFormation(6)]);
      const a = await start('sched-a', formations);
      await waitFor('a leads', () => a.s.leading);
      const b = await start('sched-b', formations);
      await waitFor('6 up', () => backend.cluster.liveJobs('web').filter((j) => j.state === 'up').length === 6, 15_000); // not a timing assertion: generous on a loaded machine
      const before = backend.cluster.liveJobs('web').map((j) => j.id).sort();
      const startsBefore = [...backend.cluster.hosts.values()].reduce((n, h) => n + h.started.length, 0);
      const bEvents: string[] = [];
      void (async () => {
        for await (const e of b.s.events()) bEvents.push(e.type);
      })();

      a.die();
      await a.s.close(); // the dead process does nothing more; its registration is left to expire
      await elapse(LEADER_TTL_MS + 100); // how soon is a figure of `npm run bench -- scheduler` (failover)
      await waitFor('b leads', () => b.s.leading, 10_000);
      await b.s.settle();
      await b.s.settle(); // a duplicate would be placed (and reported) by these passes
      expect(backend.cluster.liveJobs('web').map((j) => j.id).sort()).toEqual(before);
      expect([...backend.cluster.hosts.values()].reduce((n, h) => n + h.started.length, 0)).toBe(startsBefore);
      // the takeover reads the running jobs without reporting them as new decisions
      expect(bEvents.filter((t) => t !== 'leader' && t !== 'host-up')).toEqual([]);

      formations.scale('shop', 'v1', { web: 9 });
      await waitFor('9 up, 3 per host', () => {
        const per = backend.cluster.upPerHost('web');
        return per.h1 === 3 && per.h2 === 3 && per.h3 === 3;
      });
      formations.scale('shop', 'v1', { web: 3 });
      await waitFor('3 live', () => backend.cluster.liveJobs('web').length === 3);
    });

    it('a cleanly closed leader hands over at once', async () => {
      backend = await makeBackend();
      await backend.cluster.addHost({ id: 'h1' });
      const formations = new MemoryFormationSource([webFormation(2)]);
      const a = await start('sched-a', formations);
      await waitFor('a leads', () => a.s.leading);
      const b = await start('sched-b', formations);
      await waitFor('2 up', () => backend.cluster.liveJobs('web').filter((j) => j.state === 'up').length === 2);
      await a.s.close();
      // On a ManualClock no time passes: the handover cannot be a TTL running out.
      await waitFor('b leads', () => b.s.leading);
      await b.s.settle();
      expect(backend.cluster.liveJobs('web')).toHaveLength(2);
    });

    it('a new leader keeps the backoff delay of a crash restart the old leader had pending', async () => {
      backend = await makeBackend();
      const h1 = await backend.cluster.addHost({ id: 'h1', ttlMs: 2000 });
      // the first restart already waits 2.5 s, far longer than a clean handover takes
      const timing = { ...FAST_TIMING, backoff: { immediateRestarts: 0, initialDelayMs: 2500, factor: 2, maxDelayMs: 2500, resetAfterMs: 60_000 } };
      const formations = new MemoryFormationSource([webFormation(1)]);
      const a = await start('sched-a', formations, timing);
      await waitFor('a leads', () => a.s.leading);
      const b = await start('sched-b', formations, timing);
      const [first] = await waitFor('1 up', () => {
        const up = backend.cluster.liveJobs('web').filter((j) => j.state === 'up');
        return up.length === 1 && up;
      });
      const aCrash = (async () => {
        for await (const e of a.s.events({ types: ['crashed'] })) return e;
        return undefined;
      })();
      const bEvents: SchedulerEvent[] = [];
      void (async () => {
        for await (const e of b.s.events()) bEvents.push(e);
      })();
      h1.crash(first!.id);
      expect(await aCrash).toMatchObject({ job: { id: first!.id }, restartInMs: 2500 });
      await a.s.close(); // hands over at once, with the restart still waiting
      await waitFor('b leads', () => b.s.leading);
      // b reads the crash from the host's ended jobs once it has listed the host
      await waitFor('the restart owed', () => b.s.view().formations[0]?.processes[0]?.restartsPending === 1);
      await elapse(2_000);
      await b.s.settle();
      // nothing started before the delay
      expect(bEvents.filter((e) => e.type === 'placed')).toEqual([]);
      expect(b.s.view().formations[0]?.processes[0]).toMatchObject({ restartsPending: 1 });
      await elapse(600);
      const restarted = await waitFor('the restart', () => bEvents.find((e) => e.type === 'restarted'), 6000);
      expect(restarted).toMatchObject({ previousJobId: first!.id, job: { restarts: 1 } });
      await waitFor('1 up again', () => backend.cluster.liveJobs('web').filter((j) => j.state === 'up').length === 1);
    });

    it('a leader cut off from discovery stops acting; the new leader alone scales', async () => {
      backend = await makeBackend();
      for (const id of ['h1', 'h2']) await backend.cluster.addHost({ id, ttlMs: 2000 });
      const formations = new MemoryFormationSource([webFormation(2)]);
      const a = await start('sched-a', formations);
      await waitFor('a leads', () => a.s.leading);
      const b = await start('sched-b', formations);
      await waitFor('2 up', () => backend.cluster.liveJobs('web').filter((j) => j.state === 'up').length === 2);
      a.die(); // the process lives on, but its discovery session is gone
      await waitFor('a steps down', () => !a.s.leading, 5000);
      await elapse(LEADER_TTL_MS + 100); // its registration expires
      await waitFor('b leads', () => b.s.leading, 10_000);
      formations.scale('shop', 'v1', { web: 4 });
      await waitFor('4 up', () => backend.cluster.liveJobs('web').filter((j) => j.state === 'up').length === 4);
      await b.s.settle(); // a start by a would have been placed by now, and an extra job seen
      expect(backend.cluster.liveJobs('web')).toHaveLength(4);
      expect(a.s.leading).toBe(false);
    });
  });
}
