import { describe, expect, it } from 'vitest';
import { after, every, ManualClock, systemClock } from '../../src/common/clock.js';

describe('timers on a clock', () => {
  it('after() fires once when the clock reaches it, and not once cancelled', async () => {
    const clock = new ManualClock(1_000);
    const fired: number[] = [];
    after(clock, 100, () => fired.push(clock.now()));
    const cancel = after(clock, 50, () => fired.push(-1));
    cancel();
    await clock.advance(99);
    expect(fired).toEqual([]);
    await clock.advance(1);
    expect(fired).toEqual([1_100]);
    await clock.advance(1_000);
    expect(fired).toEqual([1_100]);
    expect(clock.pending).toBe(0);
  });

  it('every() fires at each interval until cancelled or its signal aborts', async () => {
    const clock = new ManualClock(0);
    const a: number[] = [];
    const b: number[] = [];
    const cancel = every(clock, 100, () => a.push(clock.now()));
    const stop = new AbortController();
    every(clock, 250, () => b.push(clock.now()), { signal: stop.signal });
    await clock.advance(500);
    expect(a).toEqual([100, 200, 300, 400, 500]);
    expect(b).toEqual([250, 500]);
    cancel();
    stop.abort();
    await clock.advance(1_000);
    expect(a).toHaveLength(5);
    expect(b).toHaveLength(2);
    expect(clock.pending).toBe(0);
  });

  it('stall() moves time at once and wakes what came due late, at the new time', async () => {
    const clock = new ManualClock(0);
    const woke: number[] = [];
    const cancel = every(clock, 100, () => woke.push(clock.now()));
    await clock.advance(100);
    await clock.stall(1_000);
    expect(woke).toEqual([100, 1_100]);
    await clock.advance(100);
    expect(woke).toEqual([100, 1_100, 1_200]);
    cancel();
  });

  it('the system clock sleeps in real time, and an unref sleep still resolves', async () => {
    const t0 = systemClock.now();
    await systemClock.sleep(20, undefined, { unref: true });
    expect(systemClock.now() - t0).toBeGreaterThanOrEqual(19);
    const abort = new AbortController();
    const sleeping = systemClock.sleep(60_000, abort.signal);
    abort.abort(new Error('woken'));
    await expect(sleeping).rejects.toThrow('woken');
  });
});
