import { type Clock, systemClock } from './clock.js';
import { childSignal } from './lifecycle.js';

/**
 * A collapsing change flag between producers and one waiting consumer: any number of `notify()`
 * calls between two `wait()`s wake the consumer once (it re-reads the state, which covers them all).
 */
export class ChangeFlag {
  private dirty = false;
  private wake: (() => void) | undefined;

  notify(): void {
    this.dirty = true;
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** Resolve once something changed since the last `wait()` (at once if it already did); rejects when `signal` aborts. */
  async wait(signal?: AbortSignal): Promise<void> {
    if (!this.dirty) {
      await new Promise<void>((resolve, reject) => {
        if (signal?.aborted) return reject(signal.reason);
        const onAbort = () => {
          this.wake = undefined;
          reject(signal?.reason);
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        this.wake = () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
      });
    }
    this.dirty = false;
  }
}

export const WATCH_STATE_DEFAULTS = Object.freeze({
  /** Pause before a dropped change feed is opened again, in ms. */
  retryMs: 500,
});

export interface WatchStateOptions {
  /** End the stream. */
  signal?: AbortSignal;
  /** Default {@link WATCH_STATE_DEFAULTS}.retryMs. */
  retryMs?: number;
  /** Default {@link systemClock}. */
  clock?: Clock;
}

/**
 * State that others wait on, as a stream that misses no change: `subscribe` opens a feed of changes
 * (resolving once it is live), then the state is read and yielded, and read and yielded again after
 * each change on the feed. When the feed ends or fails (a dropped connection, a restarted server),
 * it is opened again after `retryMs` and the state re-read, so a waiter also sees what changed while
 * it was disconnected: it never hangs on a lost event. While the feed cannot be opened, the state is
 * read every `retryMs`. A failing `read` ends the stream with its error (an unknown object, a source
 * that is down); the stream ends quietly when `signal` aborts or the consumer stops.
 */
export async function* watchState<S>(
  read: (signal: AbortSignal) => Promise<S>,
  subscribe: (signal: AbortSignal) => Promise<AsyncIterable<unknown>>,
  options: WatchStateOptions = {},
): AsyncGenerator<S> {
  const stop = new AbortController();
  const parent = options.signal ? childSignal(options.signal) : undefined;
  parent?.signal.addEventListener('abort', () => stop.abort(parent.signal.reason), { once: true });
  const { signal } = stop;
  const retryMs = options.retryMs ?? WATCH_STATE_DEFAULTS.retryMs;
  const clock = options.clock ?? systemClock;
  // A feed that does not watch the signal must not hold the stream open once it is aborted.
  const ended = new Promise<{ done: true; value: undefined }>((resolve) => signal.addEventListener('abort', () => resolve({ done: true, value: undefined }), { once: true }));
  try {
    while (!signal.aborted) {
      const feed = await subscribe(signal).then(
        (f) => f[Symbol.asyncIterator](),
        () => undefined,
      );
      try {
        yield await read(signal);
        while (feed) {
          const change = await Promise.race([feed.next().catch(() => ({ done: true as const, value: undefined })), ended]);
          if (change.done || signal.aborted) break;
          yield await read(signal);
        }
      } catch (err) {
        if (signal.aborted) return;
        throw err;
      } finally {
        void Promise.resolve(feed?.return?.()).catch(() => {});
      }
      await clock.sleep(retryMs, signal).catch(() => {});
    }
  } finally {
    stop.abort();
    parent?.release();
  }
}
