import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/common/clock.js';
import type { SchedulerEvent } from '../../src/scheduler/types.js';
import { FAST_TIMING, leading, record, rig, waitFor, webFormation, type Rig } from './support.js';

const count = (events: SchedulerEvent[], type: SchedulerEvent['type']) => events.filter((e) => e.type === type).length;

describe('scheduler crash backoff on an injected clock', () => {
  let r: Rig;
  afterEach(() => r.close());

  it('holds a delayed restart until the clock reaches it, however much real time passes', async () => {
    const clock = new ManualClock(Date.now());
    // 2 immediate restarts, then a minute before the third: only the clock can make that quick.
    const timing = { ...FAST_TIMING, backoff: { ...FAST_TIMING?.backoff, immediateRestarts: 2, initialDelayMs: 60_000, maxDelayMs: 60_000 } };
    r = rig({ crashAfterMs: () => 5 }, timing, clock);
    await r.cluster.addHost({ id: 'h1' });
    const s = await r.start('s1');
    await leading(s);
    const events = record(s);
    r.formations.put(webFormation(1));
    await waitFor('3 crashes and 2 restarts', () => count(events, 'crashed') >= 3 && count(events, 'restarted') >= 2);
    await s.settle();
    await s.settle();
    expect(count(events, 'restarted')).toBe(2);
    expect(s.view().formations[0]?.processes[0]?.restartsPending).toBe(1);
    await clock.advance(60_000);
    await s.settle();
    await waitFor('the third restart', () => count(events, 'restarted') >= 3);
  });
});
