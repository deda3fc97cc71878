import { ClosedError } from './errors.js';

/**
 * Everything long-lived in flynn-ts is started into a handle with an idempotent `close()` that
 * also serves `await using`.
 */
export interface Closable extends AsyncDisposable {
  close(): Promise<void>;
}

/**
 * Tracks whether a component is closed and makes its close idempotent: the first call runs
 * `doClose`, every later call returns the same promise.
 */
export class CloseGuard {
  private closing: Promise<void> | undefined;

  constructor(private readonly what: string) {}

  get closed(): boolean {
    return this.closing !== undefined;
  }

  /** Throw a {@link ClosedError} if closed: call at the top of every public method. */
  assertOpen(): void {
    if (this.closing) throw new ClosedError(this.what);
  }

  close(doClose: () => Promise<void>): Promise<void> {
    this.closing ??= doClose();
    return this.closing;
  }
}

/** Resolve after `ms`, or reject with the signal's reason when aborted first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
