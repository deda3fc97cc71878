import { afterEach, describe, expect, it } from 'vitest';
import { JOB_LABELS } from '../../src/scheduler/host-client.js';
import { leading, record, rig, waitFor, webFormation, type Rig } from './support.js';

describe('scheduler scaling on fake hosts', () => {
  let r: Rig;
  afterEach(() => r.close());

  it('spreads web=6 over three hosts as two per host, all up', async () => {
    r = rig();
    for (const id of ['h1', 'h2', 'h3']) await r.cluster.addHost({ id });
    const s = await r.start('s1');
    await leading(s);
    r.formations.put(webFormation(6));
    await waitFor('6 jobs up', () => r.cluster.liveJobs('web').filter((j) => j.state === 'up').length === 6);
    expect(r.cluster.upPerHost('web')).toEqual({ h1: 2, h2: 2, h3: 2 });
    const view = s.view();
    expect(view.leading).toBe(true);
    expect(view.hosts.map((h) => [h.id, h.jobs])).toEqual([['h1', 2], ['h2', 2], ['h3', 2]]);
    expect(view.formations[0]?.processes[0]).toMatchObject({ type: 'web', desired: 6, blocked: 0 });
    expect(view.formations[0]?.processes[0]?.jobs).toHaveLength(6);
  });

  it('scaling 6 → 2 stops exactly 4 jobs, newest first, and leaves the rest untouched', async () => {
    r = rig();
    for (const id of ['h1', 'h2', 'h3']) await r.cluster.addHost({ id });
    const s = await r.start('s1');
    await leading(s);
    const events = record(s);
    r.formations.put(webFormation(6));
    await waitFor('6 up', () => r.cluster.liveJobs('web').filter((j) => j.state === 'up').length === 6);
    const before = r.cluster.liveJobs('web').sort((a, b) => Number(a.labels[JOB_LABELS.createdAt]) - Number(b.labels[JOB_LABELS.createdAt]));
    r.formations.scale('shop', 'v1', { web: 2 });
    await waitFor('2 live', () => r.cluster.liveJobs('web').length === 2);
    await s.settle();
    const after = r.cluster.liveJobs('web');
    expect(after.every((j) => j.state === 'up')).toBe(true);
    expect(events.filter((e) => e.type === 'stopped')).toHaveLength(4);
    const created = (j: { labels: Record<string, string> }) => Number(j.labels[JOB_LABELS.createdAt]);
    const survivors = new Set(after.map((j) => j.id));
    expect(after.every((j) => before.some((b) => b.id === j.id))).toBe(true);
    const stopped = before.filter((j) => !survivors.has(j.id));
    expect(Math.min(...stopped.map(created))).toBeGreaterThanOrEqual(Math.max(...after.map(created)));
    // nothing new was started for the scale-down
    expect(events.filter((e) => e.type === 'placed')).toHaveLength(6);
  });

  it('stops every job of a deleted formation and starts a new release', async () => {
    r = rig();
    for (const id of ['h1', 'h2']) await r.cluster.addHost({ id });
    const s = await r.start('s1');
    await leading(s);
    r.formations.put(webFormation(2));
    await waitFor('2 up', () => r.cluster.liveJobs('web').filter((j) => j.state === 'up').length === 2);
    r.formations.put(webFormation(3, { release: 'v2' }));
    r.formations.delete('shop', 'v1');
    await waitFor('only v2 live', () => {
      const live = r.cluster.liveJobs('web');
      return live.length === 3 && live.every((j) => j.labels[JOB_LABELS.release] === 'v2' && j.state === 'up');
    });
  });

  it('notices a job that vanished without an event at the periodic resync and replaces it', async () => {
    r = rig();
    const h1 = await r.cluster.addHost({ id: 'h1' });
    const s = await r.start('s1');
    await leading(s);
    r.formations.put(webFormation(2));
    await waitFor('2 up', () => r.cluster.liveJobs('web').filter((j) => j.state === 'up').length === 2);
    const [gone] = h1.live();
    h1.forget(gone!.id);
    expect(r.cluster.liveJobs('web')).toHaveLength(1);
    await waitFor('2 up again', () => r.cluster.liveJobs('web').filter((j) => j.state === 'up').length === 2, 2000);
    expect(s.view().formations[0]?.processes[0]?.jobs.map((j) => j.id)).not.toContain(gone!.id);
  });
});
