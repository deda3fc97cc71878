import { type Clock, systemClock } from './clock.js';
import { FlynnError, TimeoutError } from './errors.js';
import { childSignal } from './lifecycle.js';

export const WaitErrorCodes = Object.freeze({
  /** {@link until} gave up: nothing matched within `timeoutMs`. */
  TIMEOUT: 'FLYNN_ERR_WAIT_TIMEOUT',
  /** {@link until}: the stream ended before anything matched. */
  ENDED: 'FLYNN_ERR_WAIT_ENDED',
});

/** Nothing on the stream matched within the time given. */
export class WaitTimeoutError extends TimeoutError {
  constructor(what: string, timeoutMs: number) {
    super(WaitErrorCodes.TIMEOUT, `${what} did not happen within ${timeoutMs} ms`, { detail: { timeoutMs } });
  }
}

/** The stream ended (its source closed) before anything on it matched. */
export class WaitEndedError extends FlynnError {
  constructor(what: string) {
    super(WaitErrorCodes.ENDED, 'unavailable', `the stream ended before ${what}`);
  }
}

/**
 * A stream to wait on: an iterable, or a function that opens one with a signal that aborts once
 * the wait is over (so a source blocked on I/O, such as an SSE request, is released at once).
 */
export type StreamSource<T> = AsyncIterable<T> | ((signal: AbortSignal) => AsyncIterable<T>);

export interface UntilOptions {
  /** Abort the wait: it rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Give up after this long, with a {@link WaitTimeoutError}. Default: wait as long as the stream lasts. */
  timeoutMs?: number;
  /** What is waited for, in the timeout message ("`what` did not happen within N ms"). Default `the awaited change`. */
  what?: string;
  /** Default {@link systemClock}. */
  clock?: Clock;
}

/**
 * Resolve with the first value of `stream` for which `predicate` holds. Rejects with a
 * {@link WaitTimeoutError} after `timeoutMs`, with the signal's reason when `signal` aborts, with a
 * {@link WaitEndedError} when the stream ends first, and with the error of a failing stream or
 * predicate. Either way the stream is closed when the wait is over.
 */
export async function until<T>(stream: StreamSource<T>, predicate: (value: T) => boolean | Promise<boolean>, options: UntilOptions = {}): Promise<T> {
  const what = options.what ?? 'the awaited change';
  options.signal?.throwIfAborted();
  const stop = new AbortController();
  const parent = options.signal ? childSignal(options.signal) : undefined;
  parent?.signal.addEventListener('abort', () => stop.abort(parent.signal.reason), { once: true });
  const stopped = new Promise<never>((_, reject) => stop.signal.addEventListener('abort', () => reject(stop.signal.reason), { once: true }));
  stopped.catch(() => {});
  if (options.timeoutMs !== undefined) {
    const timeoutMs = options.timeoutMs;
    (options.clock ?? systemClock).sleep(timeoutMs, stop.signal).then(
      () => stop.abort(new WaitTimeoutError(what, timeoutMs)),
      () => {},
    );
  }
  const iterator = (typeof stream === 'function' ? stream(stop.signal) : stream)[Symbol.asyncIterator]();
  const search = (async () => {
    for (;;) {
      const next = await iterator.next();
      if (next.done) throw new WaitEndedError(what);
      if (await predicate(next.value)) return next.value;
    }
  })();
  search.catch(() => {});
  try {
    return await Promise.race([search, stopped]);
  } finally {
    if (!stop.signal.aborted) stop.abort(new WaitEndedError(what));
    parent?.release();
    void Promise.resolve(iterator.return?.()).catch(() => {});
  }
}
