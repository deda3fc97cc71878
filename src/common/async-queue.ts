/**
 * A push-fed async iterable: producers `push()` values, one consumer iterates with `for await`.
 * Watches, event streams and log streams are built on it. The stream ends when the producer calls
 * `end()` (optionally with an error the consumer sees), or when the consumer stops iterating, in
 * which case `onClose` runs so the producer can release what feeds it.
 */
export class AsyncQueue<T> implements AsyncIterableIterator<T> {
  private readonly buffer: T[] = [];
  private waiter: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void } | undefined;
  private ended = false;
  private failure: unknown;
  private readonly onClose: (() => void) | undefined;

  constructor(onClose?: () => void) {
    this.onClose = onClose;
  }

  /** True once ended by either side; later pushes are dropped. */
  get closed(): boolean {
    return this.ended;
  }

  push(value: T): void {
    if (this.ended) return;
    if (this.waiter) {
      const { resolve } = this.waiter;
      this.waiter = undefined;
      resolve({ value, done: false });
    } else {
      this.buffer.push(value);
    }
  }

  /** End the stream. Buffered values are still delivered, then the error (if any) is thrown. */
  end(error?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.failure = error;
    if (this.waiter && this.buffer.length === 0) {
      const waiter = this.waiter;
      this.waiter = undefined;
      if (error === undefined) waiter.resolve({ value: undefined, done: true });
      else waiter.reject(error);
    }
    this.onClose?.();
  }

  next(): Promise<IteratorResult<T>> {
    if (this.buffer.length > 0) return Promise.resolve({ value: this.buffer.shift() as T, done: false });
    if (this.ended) {
      if (this.failure !== undefined) {
        const failure = this.failure;
        this.failure = undefined;
        return Promise.reject(failure);
      }
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** Called by `break` / `return` in a `for await` loop: the consumer is done. */
  return(): Promise<IteratorResult<T>> {
    this.buffer.length = 0;
    this.failure = undefined;
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}
