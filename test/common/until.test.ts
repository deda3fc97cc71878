import { describe, expect, it } from 'vitest';
import { AsyncQueue } from '../../src/common/async-queue.js';
import { ManualClock } from '../../src/common/clock.js';
import { until, WaitErrorCodes, WaitTimeoutError } from '../../src/common/until.js';
import { ChangeFlag, watchState } from '../../src/common/watch.js';

/** A source that records whether the wait released it. */
function source<T>() {
  const queue = new AsyncQueue<T>();
  const opened: { signal?: AbortSignal } = {};
  const open = (signal: AbortSignal) => {
    opened.signal = signal;
    signal.addEventListener('abort', () => queue.end(), { once: true });
    return queue;
  };
  return { queue, open, opened };
}

describe('until', () => {
  it('resolves with the first value that matches and releases the stream', async () => {
    const { queue, open, opened } = source<number>();
    const waiting = until(open, (n) => n > 2);
    for (const n of [1, 2, 3, 4]) queue.push(n);
    expect(await waiting).toBe(3);
    expect(opened.signal?.aborted).toBe(true);
    expect(queue.closed).toBe(true);
  });

  it('takes a plain iterable and an async predicate', async () => {
    const queue = new AsyncQueue<string>();
    queue.push('a');
    queue.push('bb');
    expect(await until(queue, async (s) => s.length === 2)).toBe('bb');
    expect(queue.closed).toBe(true);
  });

  it('times out with a typed error on the clock it is given', async () => {
    const clock = new ManualClock();
    const { queue, open, opened } = source<number>();
    const waiting = until(open, (n) => n > 100, { timeoutMs: 5_000, clock, what: 'n over 100' }).catch((e: unknown) => e);
    queue.push(1);
    await clock.advance(4_999);
    queue.push(2);
    await clock.advance(1);
    const err = await waiting;
    expect(err).toBeInstanceOf(WaitTimeoutError);
    expect(err).toMatchObject({ code: WaitErrorCodes.TIMEOUT, kind: 'timeout', message: 'n over 100 did not happen within 5000 ms' });
    expect(opened.signal?.aborted).toBe(true);
    expect(clock.pending).toBe(0);
  });

  it('rejects with the reason of an aborted signal, before or during the wait', async () => {
    const abort = new AbortController();
    const { open, opened } = source<number>();
    const waiting = until(open, () => true, { signal: abort.signal });
    abort.abort(new Error('gave up'));
    await expect(waiting).rejects.toThrow('gave up');
    expect(opened.signal?.aborted).toBe(true);
    await expect(until(open, () => true, { signal: abort.signal })).rejects.toThrow('gave up');
  });

  it('rejects when the stream ends or fails before a match, and when the predicate throws', async () => {
    const ended = new AsyncQueue<number>();
    ended.push(1);
    ended.end();
    await expect(until(ended, (n) => n > 1, { what: 'a big n' })).rejects.toMatchObject({ code: WaitErrorCodes.ENDED, message: 'the stream ended before a big n' });
    const failed = new AsyncQueue<number>();
    failed.end(new Error('connection lost'));
    await expect(until(failed, () => true)).rejects.toThrow('connection lost');
    const queue = new AsyncQueue<number>();
    queue.push(1);
    await expect(
      until(queue, () => {
        throw new Error('bad value');
      }),
    ).rejects.toThrow('bad value');
  });
});

describe('ChangeFlag', () => {
  it('wakes the waiter once for many changes, and at once for a change before the wait', async () => {
    const flag = new ChangeFlag();
    flag.notify();
    flag.notify();
    await flag.wait();
    let woke = 0;
    const waiting = flag.wait().then(() => woke++);
    await new Promise((r) => setImmediate(r));
    expect(woke).toBe(0);
    flag.notify();
    flag.notify();
    await waiting;
    expect(woke).toBe(1);
    const abort = new AbortController();
    const aborted = flag.wait(abort.signal);
    abort.abort(new Error('stop'));
    await expect(aborted).rejects.toThrow('stop');
  });
});

describe('watchState', () => {
  it('reads after subscribing, after each change, and again after the feed drops and is reopened', async () => {
    const clock = new ManualClock();
    let state = 0;
    const feeds: AsyncQueue<string>[] = [];
    const subscribe = async () => {
      const feed = new AsyncQueue<string>();
      feeds.push(feed);
      return feed;
    };
    const abort = new AbortController();
    const states = watchState(async () => state, subscribe, { signal: abort.signal, clock, retryMs: 1_000 })[Symbol.asyncIterator]();
    expect(await states.next()).toEqual({ done: false, value: 0 });
    state = 1;
    feeds[0]?.push('changed');
    expect(await states.next()).toEqual({ done: false, value: 1 });
    // The connection drops; a change made meanwhile is seen once the feed is open again.
    feeds[0]?.end(new Error('socket hang up'));
    state = 2;
    let third: IteratorResult<number> | undefined;
    const reading = states.next().then((r) => (third = r));
    await clock.sleeping(); // it waits retryMs before opening the feed again, and has read nothing meanwhile
    expect(third).toBeUndefined();
    expect(feeds).toHaveLength(1);
    await clock.advance(1_000);
    await reading;
    expect(third).toEqual({ done: false, value: 2 });
    expect(feeds).toHaveLength(2);
    abort.abort();
    expect(await states.next()).toMatchObject({ done: true });
  });

  it('reads every retryMs while the feed cannot be opened, and passes a failing read on', async () => {
    const clock = new ManualClock();
    let state = 'starting';
    let subscribes = 0;
    const subscribe = async (): Promise<AsyncIterable<string>> => {
      subscribes++;
      throw new Error('ECONNREFUSED');
    };
    const reading = until(watchState(async () => state, subscribe, { clock, retryMs: 100 }), (s) => s === 'ready');
    await clock.sleeping();
    await clock.advance(100);
    await clock.sleeping();
    state = 'ready';
    await clock.advance(100);
    expect(await reading).toBe('ready');
    expect(subscribes).toBe(3);
    const failing = watchState(
      async () => {
        throw new Error('not found');
      },
      async () => new AsyncQueue<string>(),
    );
    await expect(until(failing, () => true)).rejects.toThrow('not found');
  });
});
