import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/common/clock.js';
import type { HostConnector, SchedulerHost } from '../../src/scheduler/host-client.js';
import { MemoryFormationSource } from '../../src/scheduler/memory-formation-source.js';
import { startScheduler } from '../../src/scheduler/scheduler.js';
import { FakeCluster } from '../../src/scheduler/testing/fake-hosts.js';
import { FAST_TIMING, leading, record, rig, waitFor, webFormation, type Rig } from './support.js';

describe('scheduler host loss on fake hosts', () => {
  let r: Rig;
  afterEach(() => r.close());

  it('restarts the jobs of a host whose registration expires on the remaining hosts', async () => {
    // Registrations, heartbeats and the scheduler on one clock: the TTL passes when the test says.
    const clock = new ManualClock(Date.now());
    r = rig({ clock }, FAST_TIMING, clock);
    const hosts = [];
    for (const id of ['h1', 'h2', 'h3']) hosts.push(await r.cluster.addHost({ id, ttlMs: 1000 }));
    const s = await r.start('s1');
    await leading(s);
    const events = record(s);
    r.formations.put(webFormation(6));
    await waitFor('6 up', () => r.cluster.liveJobs('web').filter((j) => j.state === 'up').length === 6);
    hosts[1]?.kill();
    await clock.advance(999);
    await s.settle();
    expect(s.view().hosts.map((h) => h.id)).toEqual(['h1', 'h2', 'h3']); // within its TTL: still counted
    // detected by the expiry (TTL 1 s plus the registry's 20 ms sweep), not by a resync much later
    await clock.advance(21);
    await waitFor('6 up on h1 and h3', () => {
      const per = r.cluster.upPerHost('web');
      return per.h1 === 3 && per.h3 === 3;
    });
    const lost = events.find((e) => e.type === 'host-lost');
    expect(lost).toMatchObject({ type: 'host-lost', hostId: 'h2' });
    expect(lost?.type === 'host-lost' && lost.jobIds).toHaveLength(2);
    expect(s.view().hosts.map((h) => h.id)).toEqual(['h1', 'h3']);
    // lost jobs are not crashes: no backoff, no restart events
    expect(events.some((e) => e.type === 'crashed')).toBe(false);
  });

  it('keeps counting a host that unregisters cleanly as gone at once', async () => {
    const clock = new ManualClock(Date.now()); // never moved: no TTL or timer can be what acts
    r = rig({ clock }, FAST_TIMING, clock);
    const h1 = await r.cluster.addHost({ id: 'h1' });
    await r.cluster.addHost({ id: 'h2' });
    const s = await r.start('s1');
    await leading(s);
    r.formations.put(webFormation(4));
    await waitFor('4 up', () => r.cluster.liveJobs('web').filter((j) => j.state === 'up').length === 4);
    await h1.stop();
    await waitFor('4 up on h2', () => r.cluster.upPerHost('web').h2 === 4);
  });
});

describe('scheduler and unreachable hosts', () => {
  let r: Rig;
  afterEach(() => r.close());

  it('a new leader waits for an unreachable host up to hostReadyTimeoutMs, then places on the others', async () => {
    const clock = new ManualClock(Date.now());
    r = rig({ clock }, { ...FAST_TIMING, resyncMs: 60_000, hostReadyTimeoutMs: 400 }, clock); // no resync to lean on
    await r.cluster.addHost({ id: 'h1' });
    const h2 = await r.cluster.addHost({ id: 'h2' });
    h2.partition();
    r.formations.put(webFormation(2));
    const s = await r.start('s1');
    await leading(s);
    await waitFor('h1 listed', () => s.view().hosts.find((h) => h.id === 'h1')?.ready);
    await clock.advance(399);
    await s.settle();
    expect(r.cluster.liveJobs('web')).toHaveLength(0); // h2's jobs are unknown: starting now could duplicate them
    await clock.advance(2);
    await waitFor('2 up on h1', () => r.cluster.upPerHost('web').h1 === 2);
    expect(s.view().hosts.find((h) => h.id === 'h2')?.ready).toBe(false);
    h2.heal();
    await clock.advance(FAST_TIMING!.hostRetryMs!); // the next attempt to reach it
    await waitFor('h2 ready', () => s.view().hosts.find((h) => h.id === 'h2')?.ready === true);
    expect(r.cluster.liveJobs('web')).toHaveLength(2);
  });

  it('keeps counting the jobs of a host that is registered but unreachable, so nothing is duplicated', async () => {
    const clock = new ManualClock(Date.now());
    r = rig({ clock }, FAST_TIMING, clock);
    await r.cluster.addHost({ id: 'h1' });
    const h2 = await r.cluster.addHost({ id: 'h2' });
    const s = await r.start('s1');
    await leading(s);
    r.formations.put(webFormation(4));
    await waitFor('4 up', () => r.cluster.liveJobs('web').filter((j) => j.state === 'up').length === 4);
    h2.partition();
    await waitFor('h2 unreachable', () => s.view().hosts.find((h) => h.id === 'h2')?.ready === false);
    await clock.advance(500); // > resyncMs: several passes, relists and attempts to reach h2
    await s.settle();
    expect(r.cluster.liveJobs('web')).toHaveLength(4);
    expect(r.cluster.upPerHost('web')).toEqual({ h1: 2, h2: 2 });
    expect(s.view().hosts.find((h) => h.id === 'h2')?.ready).toBe(false);
    h2.heal();
    await clock.advance(FAST_TIMING!.hostRetryMs!);
    await waitFor('h2 ready', () => s.view().hosts.find((h) => h.id === 'h2')?.ready === true);
    r.formations.scale('shop', 'v1', { web: 6 });
    await waitFor('6 up, 3 per host', () => r.cluster.upPerHost('web').h1 === 3 && r.cluster.upPerHost('web').h2 === 3, 3000);
  });
});

describe('scheduler and flaky host connections', () => {
  it('survives a host whose list fails while its event stream breaks later, and recovers when it answers', async () => {
    const cluster = new FakeCluster();
    const h1 = await cluster.addHost({ id: 'h1' });
    let listFailures = 2;
    const connector: HostConnector = (info, instance) => {
      const real = cluster.connector(info, instance) as SchedulerHost;
      return {
        ...real,
        async listJobs(o) {
          if (listFailures-- > 0) throw new Error('list refused');
          return real.listJobs(o);
        },
        events(o) {
          const inner = real.events(o)[Symbol.asyncIterator]();
          let calls = 0;
          return {
            [Symbol.asyncIterator]: () => ({
              next: async () => {
                if (listFailures >= 0 && calls++ === 0) {
                  await new Promise((r) => setTimeout(r, 20));
                  throw new Error('stream reset');
                }
                return inner.next();
              },
              return: async () => ({ done: true as const, value: undefined }),
            }),
          };
        },
      };
    };
    const formations = new MemoryFormationSource([webFormation(2)]);
    const s = await startScheduler({ id: 's', discovery: cluster.mortal(), formations, connectHost: connector, timing: FAST_TIMING });
    try {
      await waitFor('2 up on h1', () => h1.live().filter((j) => j.state === 'up').length === 2, 3000);
      await s.settle(); // a stray stream failure would have made it unready
      expect(s.view().hosts[0]?.ready).toBe(true);
    } finally {
      await s.close();
      await cluster.close();
    }
  });
});
