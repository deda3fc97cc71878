import { AsyncQueue } from '../common/async-queue.js';
import type { ServiceWatch } from './discovery.js';
import type { ServiceEvent } from './types.js';

/** A backend's open watch: push events into `queue`; call `follow()` once its feed is running. */
export interface WatchHandle {
  queue: AsyncQueue<ServiceEvent>;
  watch: ServiceWatch;
  /** End the watch when `signal` aborts (at once if it already has). Call after the feed is set up. */
  follow(): void;
}

/**
 * The plumbing every backend's `watch()` shares: a queue the consumer iterates, tracked in
 * `watches` while open (so the backend's close ends it), ended by `close()`, by the consumer
 * leaving its loop or by `signal`; `release` then frees what feeds it.
 */
export function openWatch(watches: Set<ServiceWatch>, signal: AbortSignal | undefined, release: () => void): WatchHandle {
  const onAbort = () => queue.end();
  const queue = new AsyncQueue<ServiceEvent>(() => {
    signal?.removeEventListener('abort', onAbort);
    watches.delete(watch);
    release();
  });
  const watch: ServiceWatch = { [Symbol.asyncIterator]: () => queue, close: () => queue.end() };
  watches.add(watch);
  return {
    queue,
    watch,
    follow() {
      if (signal?.aborted) queue.end();
      else signal?.addEventListener('abort', onAbort, { once: true });
    },
  };
}
