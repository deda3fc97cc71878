import { describe, expect, it } from 'vitest';
import { AsyncQueue } from '../../src/common/async-queue.js';

describe('AsyncQueue', () => {
  it('delivers pushed values in order, then ends', async () => {
    const q = new AsyncQueue<number>();
    q.push(1);
    setTimeout(() => {
      q.push(2);
      q.end();
    }, 5);
    const seen: number[] = [];
    for await (const v of q) seen.push(v);
    expect(seen).toEqual([1, 2]);
  });

  it('delivers buffered values before the error it ended with', async () => {
    const q = new AsyncQueue<number>();
    q.push(1);
    q.end(new Error('boom'));
    const it = q[Symbol.asyncIterator]();
    expect(await it.next()).toEqual({ value: 1, done: false });
    await expect(it.next()).rejects.toThrow('boom');
  });

  it('runs onClose when the consumer breaks out of the loop', async () => {
    let closed = 0;
    const q = new AsyncQueue<number>(() => closed++);
    q.push(1);
    for await (const _ of q) break;
    expect(closed).toBe(1);
    expect(q.closed).toBe(true);
  });
});
