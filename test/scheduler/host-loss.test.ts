import { afterEach, describe, expect, it } from 'vitest';
import { leading, record, rig, waitFor, webFormation, type Rig } from './support.js';

describe('scheduler host loss on fake hosts', () => {
  let r: Rig;
  afterEach(() => r.close());

  it('restarts the jobs of a host whose registration expires on the remaining hosts', async () => {
    r = rig();
    const hosts = [];
    for (const id of ['h1', 'h2', 'h3']) hosts.push(await r.cluster.addHost({ id, ttlMs: 1000 }));
    const s = await r.start('s1');
    await leading(s);
    const events = record(s);
    r.formations.put(webFormation(6));
    await waitFor('6 up', () => r.cluster.liveJobs('web').filter((j) => j.state === 'up').length === 6);
    const killedAt = Date.now();
    hosts[1]?.kill();
    await waitFor('6 up on h1 and h3', () => {
      const per = r.cluster.upPerHost('web');
      return per.h1 === 3 && per.h3 === 3;
    }, 4000);
    const tookMs = Date.now() - killedAt;
    const lost = events.find((e) => e.type === 'host-lost');
    expect(lost).toMatchObject({ type: 'host-lost', hostId: 'h2' });
    expect(lost?.type === 'host-lost' && lost.jobIds).toHaveLength(2);
    expect(s.view().hosts.map((h) => h.id)).toEqual(['h1', 'h3']);
    // detected within the host TTL (1 s) plus the registry sweep, not by a resync much later
    expect(tookMs).toBeLessThan(2500);
    // lost jobs are not crashes: no backoff, no restart events
    expect(events.some((e) => e.type === 'crashed')).toBe(false);
  });

  it('keeps counting a host that unregisters cleanly as gone at once', async () => {
    r = rig();
    const h1 = await r.cluster.addHost({ id: 'h1' });
    await r.cluster.addHost({ id: 'h2' });
    const s = await r.start('s1');
    await leading(s);
    r.formations.put(webFormation(4));
    await waitFor('4 up', () => r.cluster.liveJobs('web').filter((j) => j.state === 'up').length === 4);
    const t0 = Date.now();
    await h1.stop();
    await waitFor('4 up on h2', () => r.cluster.upPerHost('web').h2 === 4, 2000);
    expect(Date.now() - t0).toBeLessThan(500);
  });
});
