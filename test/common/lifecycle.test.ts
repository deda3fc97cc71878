import { describe, expect, it } from 'vitest';
import { settlesWithin } from '../../src/common/lifecycle.js';

const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('settlesWithin', () => {
  it('answers true when the work settles in time, false when the time runs out, and leaves no timer behind', async () => {
    const before = timers();
    expect(await settlesWithin(Promise.resolve('x'), 10_000)).toBe(true);
    expect(timers()).toBe(before);
    expect(await settlesWithin(new Promise(() => {}), 20)).toBe(false);
    expect(timers()).toBe(before);
  });

  it('passes a rejection of the work on', async () => {
    await expect(settlesWithin(Promise.reject(new Error('broke')), 10_000)).rejects.toThrow('broke');
  });
});
