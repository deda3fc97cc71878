import { childSignal } from './lifecycle.js';


/**
 * Time as a seam: where timing is policy (a deploy's boot timeout, crash backoff, how long ended
 * jobs are remembered) components take a `Clock`, so tests can move time on instead of sleeping.
 * {@link systemClock} is the default everywhere; {@link ManualClock} is the test double.
 */
export interface Clock {
  /** Milliseconds since the epoch, as `Date.now()`. */
  now(): number;
  /** Resolve after `ms`, or reject with the signal's reason when aborted first. */
  sleep(ms: number, signal?: AbortSignal, options?: SleepOptions): Promise<void>;
}

export interface SleepOptions {
  /** On the real clock, the timer does not keep the process alive (as `timer.unref()`). Default false. */
  unref?: boolean;
}

/** The real clock: `Date.now()` and timers. */
export const systemClock: Clock = Object.freeze({
  now: () => Date.now(),
  sleep(ms: number, signal?: AbortSignal, options: SleepOptions = {}): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      if (options.unref) timer.unref();
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  },
});

export interface TimerOptions extends SleepOptions {
  /** Cancels the timer, as the returned function does. */
  signal?: AbortSignal;
}

/** A timer's own abort controller, also aborted by `options.signal` (without a listener left behind once it is over). */
function timerStop(options: TimerOptions): { stop: AbortController; release: () => void } {
  const stop = new AbortController();
  if (!options.signal) return { stop, release: () => {} };
  const link = childSignal(options.signal);
  link.signal.addEventListener('abort', () => stop.abort(), { once: true });
  return { stop, release: link.release };
}

/** `fn` once after `ms` on `clock` (a `setTimeout` on the seam). Returns the function that cancels it. */
export function after(clock: Clock, ms: number, fn: () => void, options: TimerOptions = {}): () => void {
  const { stop, release } = timerStop(options);
  clock
    .sleep(ms, stop.signal, options)
    .then(fn, () => {})
    .finally(release);
  return () => stop.abort();
}

/** `fn` every `ms` on `clock` (a `setInterval` on the seam), until cancelled. Returns the function that cancels it. */
export function every(clock: Clock, ms: number, fn: () => void, options: TimerOptions = {}): () => void {
  const { stop, release } = timerStop(options);
  void (async () => {
    for (;;) {
      const due = await clock.sleep(ms, stop.signal, options).then(
        () => true,
        () => false,
      );
      if (!due) return release();
      fn();
    }
  })();
  return () => stop.abort();
}

interface Sleeper {
  at: number;
  resolve: () => void;
}

/**
 * A clock that moves only when told to (`advance`): sleepers wake, in time order, once the time
 * they wait for is reached. For tests of timing policy.
 */
export class ManualClock implements Clock {
  private time: number;
  private readonly sleepers = new Set<Sleeper>();
  private readonly watchers = new Set<() => void>();

  constructor(start = 0) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  /** How many sleeps are pending (a test can wait until the code under test sleeps). */
  get pending(): number {
    return this.sleepers.size;
  }

  /** Resolve once at least `count` sleeps are pending: the code under test is waiting on the clock. */
  async sleeping(count = 1): Promise<void> {
    while (this.sleepers.size < count) await new Promise<void>((resolve) => this.watchers.add(resolve));
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const sleeper: Sleeper = {
        at: this.time + Math.max(0, ms),
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        this.sleepers.delete(sleeper);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.sleepers.add(sleeper);
      for (const w of this.watchers) w();
      this.watchers.clear();
    });
  }

  /**
   * A stalled process (a long GC, synchronous work): time jumps on by `ms` at once, and every sleep
   * that came due meanwhile wakes late, at the new time, earliest first.
   */
  async stall(ms: number): Promise<void> {
    this.time += ms;
    await this.advance(0);
  }

  /**
   * Move time on by `ms`, waking every sleeper whose time came, earliest first, and letting the
   * promise callbacks of each run before the next wakes (so a loop that sleeps again is seen).
   */
  async advance(ms: number): Promise<void> {
    const until = this.time + ms;
    for (;;) {
      const next = [...this.sleepers].filter((s) => s.at <= until).sort((a, b) => a.at - b.at)[0];
      if (!next) break;
      this.sleepers.delete(next);
      this.time = Math.max(this.time, next.at);
      next.resolve();
      await flush();
    }
    this.time = until;
  }
}

/** Let pending promise callbacks (and the I/O-free work they start) run. */
async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
