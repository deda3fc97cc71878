import { afterEach, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../../src/common/clock.js';
import { MemoryStore } from '../../src/controller/memory-store.js';
import { MemoryStateStore, type BackoffRecord, type StateStore } from '../../src/scheduler/backoff-ledger.js';
import type { Scheduler } from '../../src/scheduler/scheduler.js';
import type { SchedulerEvent } from '../../src/scheduler/types.js';
import { FAST_TIMING, leading, record, rig, waitFor, webFormation, type Rig } from './support.js';

type Crashed = Extract<SchedulerEvent, { type: 'crashed' }>;
type Restarted = Extract<SchedulerEvent, { type: 'restarted' }>;
const crashes = (events: SchedulerEvent[]) => events.filter((e): e is Crashed => e.type === 'crashed');
const restarts = (events: SchedulerEvent[]) => events.filter((e): e is Restarted => e.type === 'restarted');

// One immediate restart, then 10 s, 20 s, 40 s...: only the clock makes that quick.
const TIMING = { ...FAST_TIMING, resyncMs: 30_000, backoff: { immediateRestarts: 1, initialDelayMs: 10_000, factor: 2, maxDelayMs: 80_000, resetAfterMs: 300_000 } };

async function stored(state: StateStore): Promise<BackoffRecord[]> {
  return (await state.listState('')).map(([, v]) => JSON.parse(v) as BackoffRecord);
}

describe('scheduler crash backoff kept in a state store', () => {
  let r: Rig;
  afterEach(() => r.close());

  /** Crash web until the third crash waits 20 s; returns the scheduler and its events. */
  async function crashLoop(clock: ManualClock, state: StateStore, crashing: { on: boolean }) {
    r = rig({ crashAfterMs: () => (crashing.on ? 5 : undefined) }, TIMING, clock, state);
    await r.cluster.addHost({ id: 'h1' });
    const s = await r.start('s1');
    await leading(s);
    const events = record(s);
    r.formations.put(webFormation(1));
    await waitFor('the second crash, held 10 s', () => crashes(events)[1]?.restartInMs === 10_000);
    await clock.advance(10_000);
    await waitFor('the third crash, held 20 s', () => crashes(events)[2]?.restartInMs === 20_000);
    return { s, events };
  }

  /** What a platform restart does to the hosts: their memory of ended jobs is gone with them. */
  async function restartHost(): Promise<void> {
    await r.cluster.hosts.get('h1')?.stop();
    await r.cluster.addHost({ id: 'h1' });
  }

  it.each([
    ['a MemoryStateStore', () => new MemoryStateStore()],
    ["the controller's store", () => new MemoryStore()],
  ])('a restarted scheduler waits the remembered delay, and the delays go on growing (%s)', async (_, makeState) => {
    const clock = new ManualClock(Date.now());
    const state = makeState();
    const { s } = await crashLoop(clock, state, { on: true });
    const dueAt = clock.now() + 20_000;
    await s.settle();
    await s.close();
    expect(await stored(state)).toMatchObject([{ app: 'shop', release: 'v1', type: 'web', owed: [{ attempt: 3, dueAt }] }]);

    await restartHost();
    const s2: Scheduler = await r.start('s2');
    await leading(s2);
    const events = record(s2);
    await waitFor('the remembered restart owed', () => s2.view().formations[0]?.processes[0]?.restartsPending === 1);
    await clock.advance(19_000);
    await s2.settle();
    expect(r.cluster.liveJobs('web')).toEqual([]);
    expect(s2.view().formations[0]?.processes[0]?.restartsPending).toBe(1);
    expect(restarts(events)).toEqual([]);

    await clock.advance(1_000);
    await waitFor('the remembered restart', () => restarts(events)[0]);
    expect(restarts(events)[0]?.job.restarts).toBe(3);
    await waitFor('its crash, held 40 s', () => crashes(events)[0]?.restartInMs === 40_000);
  });

  it('a restarted job lost with the platform is restarted at once with its restart number', async () => {
    const clock = new ManualClock(Date.now());
    const state = new MemoryStateStore();
    const crashing = { on: true };
    const { s } = await crashLoop(clock, state, crashing);
    crashing.on = false; // the next restart stays up
    await clock.advance(20_000);
    await waitFor('restart 3 up', () => r.cluster.liveJobs('web').find((j) => j.state === 'up'));
    await s.settle();
    await s.close();
    expect(await stored(state)).toMatchObject([{ type: 'web', owed: [], young: [{ attempt: 3 }] }]);

    await restartHost();
    crashing.on = true;
    const host = r.cluster.hosts.get('h1');
    const restartNumbers = () => host?.started.map((req) => req.labels['flynn.restarts']) ?? [];
    const s2 = await r.start('s2');
    await leading(s2);
    await waitFor('the lost job restarted', () => restartNumbers().length === 1);
    expect(restartNumbers()).toEqual(['3']);
    await waitFor('its crash, held', () => s2.view().formations[0]?.processes[0]?.restartsPending === 1);
    await clock.advance(39_999);
    await s2.settle();
    expect(restartNumbers()).toEqual(['3']);
    await clock.advance(1);
    await waitFor('restart 4 after 40 s', () => restartNumbers().length === 2);
    expect(restartNumbers()).toEqual(['3', '4']);
  });

  it('forgets the backoff once the job stays up, and when the formation goes', async () => {
    const clock = new ManualClock(Date.now());
    const state = new MemoryStateStore();
    const crashing = { on: true };
    const { s } = await crashLoop(clock, state, crashing);
    crashing.on = false;
    await clock.advance(20_000);
    await waitFor('restart 3 up', () => r.cluster.liveJobs('web').find((j) => j.state === 'up'));
    await s.settle();
    expect(await stored(state)).toHaveLength(1);
    await clock.advance(TIMING.backoff.resetAfterMs);
    await s.settle();
    await vi.waitFor(async () => expect(await stored(state)).toEqual([]), { timeout: 5_000 });

    crashing.on = true;
    r.cluster.hosts.get('h1')?.crash(r.cluster.liveJobs('web')[0]?.id as string);
    await vi.waitFor(async () => expect(await stored(state)).toHaveLength(1), { timeout: 5_000 });
    r.formations.delete('shop', 'v1');
    await s.settle();
    await vi.waitFor(async () => expect(await stored(state)).toEqual([]), { timeout: 5_000 });
  });
});
