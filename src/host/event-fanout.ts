import { AsyncQueue } from '../common/async-queue.js';

/** Hands every published value to each current subscriber; subscriptions are AsyncIterables. */
export class EventFanout<T> {
  private readonly queues = new Set<AsyncQueue<T>>();
  private ended = false;

  publish(value: T): void {
    for (const queue of this.queues) queue.push(value);
  }

  subscribe(signal?: AbortSignal): AsyncQueue<T> {
    const queue: AsyncQueue<T> = new AsyncQueue<T>(() => {
      this.queues.delete(queue);
      signal?.removeEventListener('abort', onAbort);
    });
    const onAbort = () => queue.end();
    if (this.ended || signal?.aborted) {
      queue.end();
      return queue;
    }
    this.queues.add(queue);
    signal?.addEventListener('abort', onAbort, { once: true });
    return queue;
  }

  /** End every subscription; later subscriptions end at once. */
  end(): void {
    this.ended = true;
    for (const queue of [...this.queues]) queue.end();
  }
}
