import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/common/clock.js';
import type { SchedulerEvent } from '../../src/scheduler/types.js';
import { FAST_TIMING, leading, record, rig, waitFor, webFormation, type Rig } from './support.js';

type Rebalanced = Extract<SchedulerEvent, { type: 'rebalanced' }>;

/** Samples the number of up `web` jobs every millisecond; `min` is the lowest seen. */
function watchUp(r: Rig): { min: number; stop(): void } {
  const out = { min: Infinity, stop: () => clearInterval(timer) };
  const timer = setInterval(() => {
    out.min = Math.min(out.min, r.cluster.liveJobs('web').filter((j) => j.state === 'up').length);
  }, 1);
  return out;
}

describe('scheduler rebalancing when a host joins (fake hosts)', () => {
  let r: Rig;
  afterEach(() => r.close());

  it('moves web=6 from 3+3 to 2+2+2 when a third host joins, one move at a time, never below 6 up', async () => {
    const clock = new ManualClock(Date.now());
    r = rig({ stepMs: 10, clock }, FAST_TIMING, clock);
    for (const id of ['h1', 'h2']) await r.cluster.addHost({ id });
    const s = await r.start('s1');
    await leading(s);
    r.formations.put(webFormation(6));
    await waitFor('3+3 up', () => {
      const per = r.cluster.upPerHost('web');
      return per.h1 === 3 && per.h2 === 3;
    });
    const events = record(s);
    const up = watchUp(r);
    await r.cluster.addHost({ id: 'h3' });
    await waitFor('h3 ready', () => s.view().hosts.some((h) => h.id === 'h3' && h.ready));
    // h3 receives nothing before it has been ready for the settle time
    const settleMs = FAST_TIMING!.rebalanceSettleMs!;
    await clock.advance(settleMs - 1);
    await s.settle();
    expect(events.filter((e) => e.type === 'placed' || e.type === 'rebalanced')).toEqual([]);
    await clock.advance(2);
    await waitFor('2+2+2 up', () => {
      const per = r.cluster.upPerHost('web');
      return per.h1 === 2 && per.h2 === 2 && per.h3 === 2 && r.cluster.liveJobs('web').length === 6;
    }, 5000);
    await s.settle();
    up.stop();
    expect(up.min).toBeGreaterThanOrEqual(6);
    expect(r.cluster.upPerHost('web')).toEqual({ h1: 2, h2: 2, h3: 2 });

    const moves = events.filter((e): e is Rebalanced => e.type === 'rebalanced');
    expect(moves).toHaveLength(2);
    expect(moves.map((m) => m.toHostId)).toEqual(['h3', 'h3']);
    expect(moves.map((m) => m.fromHostId).sort()).toEqual(['h1', 'h2']);
    // the order of every move: placed on h3, seen up, then the job on the full host is stopped
    const placedOnH3 = events.filter((e) => e.type === 'placed' && e.job.hostId === 'h3');
    expect(placedOnH3).toHaveLength(2);
    const at = (pred: (e: SchedulerEvent) => boolean) => events.findIndex(pred);
    for (const m of moves) {
      const placed = at((e) => e.type === 'placed' && e.job.id === m.startedJobId);
      const started = at((e) => e.type === 'started' && e.job.id === m.startedJobId);
      const stopped = at((e) => e.type === 'stopped' && e.job.id === m.stoppedJobId && e.reason === 'rebalance');
      const done = events.indexOf(m);
      expect(placed).toBeGreaterThanOrEqual(0);
      expect(placed).toBeLessThan(started);
      expect(started).toBeLessThan(stopped);
      expect(stopped).toBeLessThan(done);
    }
    // one move at a time: the second placement on h3 comes after the first move completed
    expect(events.indexOf(placedOnH3[1] as SchedulerEvent)).toBeGreaterThan(events.indexOf(moves[0] as Rebalanced));
    // nothing else was stopped
    expect(events.filter((e) => e.type === 'stopped').every((e) => e.type === 'stopped' && e.reason === 'rebalance')).toBe(true);
  });

  it('stops the newest job of the fullest host', async () => {
    const clock = new ManualClock(Date.now());
    r = rig({ clock }, FAST_TIMING, clock);
    await r.cluster.addHost({ id: 'h1' });
    const s = await r.start('s1');
    await leading(s);
    r.formations.put(webFormation(1));
    const [older] = await waitFor('1 up on h1', () => r.cluster.upPerHost('web').h1 === 1 && r.cluster.liveJobs('web'));
    await clock.advance(5); // the second job is created later
    r.formations.scale('shop', 'v1', { web: 2 });
    await waitFor('2 up on h1', () => r.cluster.upPerHost('web').h1 === 2);
    const newer = r.cluster.liveJobs('web').find((j) => j.id !== older?.id);
    const events = record(s);
    await r.cluster.addHost({ id: 'h2' });
    await waitFor('h2 ready', () => s.view().hosts.some((h) => h.id === 'h2' && h.ready));
    await clock.advance(FAST_TIMING!.rebalanceSettleMs! + 1);
    const move = await waitFor('the move', () => events.find((e): e is Rebalanced => e.type === 'rebalanced'), 3000);
    expect(move).toMatchObject({ fromHostId: 'h1', toHostId: 'h2', stoppedJobId: newer?.id });
    await waitFor('1+1 up', () => r.cluster.upPerHost('web').h1 === 1 && r.cluster.upPerHost('web').h2 === 1 && r.cluster.liveJobs('web').length === 2);
    expect(r.cluster.liveJobs('web').map((j) => j.id)).toContain(older?.id);
  });

  it('leaves a spread that differs by one alone', async () => {
    const clock = new ManualClock(Date.now());
    r = rig({ clock }, FAST_TIMING, clock);
    for (const id of ['h1', 'h2']) await r.cluster.addHost({ id });
    const s = await r.start('s1');
    await leading(s);
    r.formations.put(webFormation(4, { processes: { web: 4 } }));
    await waitFor('2+2 up', () => r.cluster.upPerHost('web').h1 === 2 && r.cluster.upPerHost('web').h2 === 2);
    const events = record(s);
    r.formations.scale('shop', 'v1', { web: 3 }); // 2+1 (or 1+2)
    await r.cluster.addHost({ id: 'h3' });
    await waitFor('h3 ready', () => s.view().hosts.some((h) => h.id === 'h3' && h.ready));
    await clock.advance(FAST_TIMING!.rebalanceSettleMs! + 1);
    // 2/1/0 differs by 2: one move to h3; then 1/1/1 is balanced and nothing else moves
    await waitFor('1+1+1 up', () => {
      const per = r.cluster.upPerHost('web');
      return per.h1 === 1 && per.h2 === 1 && per.h3 === 1 && r.cluster.liveJobs('web').length === 3;
    });
    await clock.advance(FAST_TIMING!.rebalanceSettleMs! + FAST_TIMING!.resyncMs!); // a settle time and a resync later
    await s.settle();
    expect(events.filter((e) => e.type === 'rebalanced')).toHaveLength(1);
    expect(r.cluster.liveJobs('web')).toHaveLength(3);
  });

  it('ignores a host that joins and leaves within the settle time, and rebalances once one stays', async () => {
    const settleMs = 1000;
    const clock = new ManualClock(Date.now()); // each flap lasts 100 ms of it, however loaded the machine
    r = rig({ clock }, { ...FAST_TIMING, rebalanceSettleMs: settleMs }, clock);
    for (const id of ['h1', 'h2']) await r.cluster.addHost({ id });
    const s = await r.start('s1');
    await leading(s);
    r.formations.put(webFormation(6));
    await waitFor('3+3 up', () => r.cluster.upPerHost('web').h1 === 3 && r.cluster.upPerHost('web').h2 === 3);
    const events = record(s);
    for (let i = 0; i < 3; i++) {
      const flap = await r.cluster.addHost({ id: 'h3' });
      await waitFor('h3 seen', () => s.view().hosts.some((h) => h.id === 'h3' && h.ready));
      await clock.advance(100);
      await flap.stop();
      await waitFor('h3 gone', () => !s.view().hosts.some((h) => h.id === 'h3'));
    }
    await clock.advance(settleMs);
    await s.settle();
    expect(events.filter((e) => e.type === 'placed' || e.type === 'stopped' || e.type === 'rebalanced')).toEqual([]);
    expect(r.cluster.upPerHost('web')).toMatchObject({ h1: 3, h2: 3 });

    await r.cluster.addHost({ id: 'h3' });
    await waitFor('h3 ready', () => s.view().hosts.some((h) => h.id === 'h3' && h.ready));
    await clock.advance(settleMs + 1); // it stays: settled
    await waitFor('2+2+2 up', () => {
      const per = r.cluster.upPerHost('web');
      return per.h1 === 2 && per.h2 === 2 && per.h3 === 2 && r.cluster.liveJobs('web').length === 6;
    });
  });

  it('moves nothing with rebalance: false, nor an omni type, nor to a host the type may not run on', async () => {
    const clock = new ManualClock(Date.now());
    r = rig({ clock }, FAST_TIMING, clock);
    for (const id of ['h1', 'h2']) await r.cluster.addHost({ id, tags: { disk: 'ssd' } });
    const off = await r.start('off');
    await leading(off);
    await off.close();
    const { startScheduler } = await import('../../src/scheduler/scheduler.js');
    const s = await startScheduler({ id: 's-off', discovery: r.cluster.mortal(), formations: r.formations, connectHost: r.cluster.connector, timing: FAST_TIMING, rebalance: false, clock });
    try {
      await leading(s);
      r.formations.put(webFormation(4));
      await waitFor('2+2 up', () => r.cluster.upPerHost('web').h1 === 2 && r.cluster.upPerHost('web').h2 === 2);
      const events = record(s);
      await r.cluster.addHost({ id: 'h3' });
      await waitFor('h3 ready', () => s.view().hosts.some((h) => h.id === 'h3' && h.ready));
      await clock.advance(FAST_TIMING!.rebalanceSettleMs! + 300); // h3 settled long since
      await s.settle();
      expect(events.filter((e) => e.type === 'placed' || e.type === 'rebalanced')).toEqual([]);
    } finally {
      await s.close();
    }
    // with rebalancing on: ssd-only web stays off the untagged h3, the omni type never moves
    const t = await r.start('s-on');
    await leading(t);
    r.formations.put(webFormation(4, { processes: { web: 4, ship: 1 }, omni: ['ship'], tags: { web: { disk: 'ssd' } }, spec: { ...webFormation(1).spec, ship: { image: 'flynn-ts/runtime:latest', cmd: ['ship'] } } }));
    const events = record(t);
    await waitFor('ship on every host', () => r.cluster.liveJobs('ship').filter((j) => j.state === 'up').length === 3);
    await clock.advance(FAST_TIMING!.rebalanceSettleMs! + 300);
    await t.settle();
    expect(events.filter((e) => e.type === 'rebalanced' || e.type === 'stopped')).toEqual([]);
    expect(r.cluster.upPerHost('web')).toEqual({ h1: 2, h2: 2, h3: 0 });
  });

  it('rejects a rebalance option that is not a boolean, and a negative settle time', async () => {
    r = rig();
    const { startScheduler } = await import('../../src/scheduler/scheduler.js');
    const base = { discovery: r.cluster.mortal(), formations: r.formations, connectHost: r.cluster.connector };
    await expect(startScheduler({ ...base, rebalance: 'yes' as unknown as boolean })).rejects.toMatchObject({ code: 'FLYNN_ERR_SCHEDULER_INVALID_OPTIONS' });
    await expect(startScheduler({ ...base, timing: { rebalanceSettleMs: -1 } })).rejects.toMatchObject({ code: 'FLYNN_ERR_SCHEDULER_INVALID_OPTIONS' });
  });
});
