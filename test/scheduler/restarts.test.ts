import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/common/clock.js';
import { JOB_LABELS } from '../../src/scheduler/host-client.js';
import type { SchedulerEvent } from '../../src/scheduler/types.js';
import { FAST_TIMING, leading, record, rig, waitFor, webFormation, type Rig } from './support.js';

type Crashed = Extract<SchedulerEvent, { type: 'crashed' }>;

describe('scheduler crash restarts on fake hosts', () => {
  let r: Rig;
  afterEach(() => r.close());

  it('restarts a crashing type at once for the first restarts, then with growing, capped delays', async () => {
    r = rig({ crashAfterMs: (req) => (req.labels[JOB_LABELS.type] === 'flaky' ? 5 : undefined) });
    await r.cluster.addHost({ id: 'h1' });
    const s = await r.start('s1');
    await leading(s);
    const events = record(s);
    r.formations.put({
      app: 'shop',
      release: 'v1',
      processes: { flaky: 1 },
      spec: { flaky: { image: 'flynn-ts/runtime:latest', cmd: ['crash'] } },
    });
    await waitFor('6 crashes', () => events.filter((e) => e.type === 'crashed').length >= 6, 5000);
    const crashes = events.filter((e): e is Crashed => e.type === 'crashed');
    // FAST_TIMING backoff: 2 immediate, then 100, 200, 400 (cap), 400 ms
    expect(crashes.slice(0, 6).map((c) => c.restartInMs)).toEqual([0, 0, 100, 200, 400, 400]);
    // each restart waited its delay: time from the crash to the replacement's placement
    const restarted = events.filter((e) => e.type === 'restarted');
    expect(restarted.length).toBeGreaterThanOrEqual(5);
    for (const [i, e] of restarted.slice(0, 5).entries()) {
      if (e.type !== 'restarted') continue;
      expect(e.previousJobId).toBe(crashes[i]?.job.id);
      expect(e.job.restarts).toBe(i + 1);
    }
    // never more than the one job at a time
    expect(r.cluster.liveJobs('flaky').length).toBeLessThanOrEqual(1);
  });

  it('waits the backoff delay between crash and restart', async () => {
    const clock = new ManualClock(Date.now());
    r = rig({ crashAfterMs: () => 5 }, FAST_TIMING, clock);
    await r.cluster.addHost({ id: 'h1' });
    const s = await r.start('s1');
    await leading(s);
    const events = record(s);
    const restarted = () => events.filter((e) => e.type === 'restarted').length;
    r.formations.put(webFormation(1));
    // FAST_TIMING backoff: the first 2 restarts need no time at all (the clock stands still)
    await waitFor('2 restarts and the third crash', () => restarted() === 2 && events.filter((e) => e.type === 'crashed').length === 3);
    for (const delay of [100, 200]) {
      const before = restarted();
      await clock.advance(delay - 1);
      await s.settle();
      expect(restarted(), `restart ${before + 1} before its ${delay} ms`).toBe(before);
      await clock.advance(1);
      await waitFor(`restart ${before + 1} after ${delay} ms`, () => restarted() === before + 1);
      await waitFor('its crash', () => events.filter((e) => e.type === 'crashed').length === before + 2);
    }
  });

  it('starts the count afresh after a job stayed up for resetAfterMs', async () => {
    let n = 0;
    r = rig({ crashAfterMs: () => (++n === 3 ? 250 : n <= 4 ? 5 : undefined) }, {
      ...FAST_TIMING,
      backoff: { ...FAST_TIMING!.backoff, resetAfterMs: 150 },
    });
    await r.cluster.addHost({ id: 'h1' });
    const s = await r.start('s1');
    await leading(s);
    const events = record(s);
    r.formations.put(webFormation(1));
    await waitFor('4 crashes', () => events.filter((e) => e.type === 'crashed').length >= 4, 5000);
    const crashes = events.filter((e): e is Crashed => e.type === 'crashed');
    // crash 1, 2: immediate; job 3 ran 250 ms > 150 ms, so its crash counts as the first again
    expect(crashes.map((c) => c.restartInMs)).toEqual([0, 0, 0, 0]);
    expect(crashes.map((c) => c.job.restarts)).toEqual([0, 1, 2, 1]);
  });

  it('never restarts a one-off job', async () => {
    r = rig({ crashAfterMs: (req) => (req.labels[JOB_LABELS.oneOff] === 'true' ? 10 : undefined) });
    await r.cluster.addHost({ id: 'h1' });
    const s = await r.start('s1');
    await leading(s);
    const events = record(s);
    const job = await s.runJob({ app: 'shop', release: 'v1', image: 'flynn-ts/runtime:latest', cmd: ['rake', 'db:migrate'] });
    expect(job).toMatchObject({ oneOff: true, type: 'run', hostId: 'h1', state: 'pending' });
    await waitFor('the crash', () => events.find((e) => e.type === 'crashed'));
    await s.settle(); // a restart would be placed by this pass
    expect(events.find((e) => e.type === 'crashed')).toMatchObject({ job: { id: job.id }, restartInMs: null });
    expect(events.filter((e) => e.type === 'placed' || e.type === 'restarted')).toHaveLength(1);
    expect(r.cluster.liveJobs()).toHaveLength(0);
  });

  it('rejects a malformed one-off request with a typed error', async () => {
    r = rig();
    await r.cluster.addHost({ id: 'h1' });
    const s = await r.start('s1');
    await leading(s);
    await expect(s.runJob({ app: 'shop', release: 'v1', image: '', cmd: [] })).rejects.toMatchObject({ code: 'FLYNN_ERR_SCHEDULER_INVALID_FORMATION' });
    await expect(s.runJob({ app: '', release: 'v1', image: 'x', cmd: [] })).rejects.toMatchObject({ code: 'FLYNN_ERR_SCHEDULER_INVALID_JOB' });
    await expect(s.runJob({ app: 'a', release: 'v1', image: 'x', cmd: [], tags: { gpu: 'yes' } })).rejects.toMatchObject({ code: 'FLYNN_ERR_SCHEDULER_NO_HOST' });
  });
});
