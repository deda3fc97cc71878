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

/**
 * Whether `work` settles within `ms` (true) or the time runs out first (false); a rejection of
 * `work` is passed on. Unlike racing `sleep(ms)`, no timer outlives the answer and keeps a
 * finished process alive.
 */
export async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([work.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)))]);
  } finally {
    clearTimeout(timer);
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

interface Children {
  controllers: Set<AbortController>;
  onAbort: () => void;
}

const childrenOf = new WeakMap<AbortSignal, Children>();

/**
 * A signal for one operation that aborts when `parent` does. However many operations are in
 * flight, `parent` carries at most one listener for all of them (none once every child is
 * released), so a long-lived signal shared by many concurrent requests neither leaks listeners
 * nor trips Node's MaxListenersExceededWarning. Call `release()` once the operation is over
 * (idempotent). Node 20's `AbortSignal.any` is no substitute: it keeps every dependent signal
 * that has a listener alive as long as the parent lives.
 */
export function childSignal(parent: AbortSignal): { signal: AbortSignal; release: () => void } {
  const child = new AbortController();
  if (parent.aborted) {
    child.abort(parent.reason);
    return { signal: child.signal, release: () => {} };
  }
  let entry = childrenOf.get(parent);
  if (!entry) {
    const controllers = new Set<AbortController>();
    const onAbort = () => {
      childrenOf.delete(parent);
      for (const c of controllers) c.abort(parent.reason);
      controllers.clear();
    };
    entry = { controllers, onAbort };
    childrenOf.set(parent, entry);
    parent.addEventListener('abort', onAbort, { once: true });
  }
  const { controllers, onAbort } = entry;
  controllers.add(child);
  return {
    signal: child.signal,
    release: () => {
      if (!controllers.delete(child) || controllers.size > 0) return;
      parent.removeEventListener('abort', onAbort);
      if (childrenOf.get(parent) === entry) childrenOf.delete(parent);
    },
  };
}
