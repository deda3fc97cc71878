import { sleep as realSleep } from './lifecycle.js';

/**
 * Time as a seam: where timing is policy (a deploy's boot timeout, crash backoff, how long ended
 * jobs are remembered) components take a `Clock`, so tests can move time on instead of sleeping.
 * {@link systemClock} is the default everywhere; {@link ManualClock} is the test double.
 */
export interface Clock {
  /** Milliseconds since the epoch, as `Date.now()`. */
  now(): number;
  /** Resolve after `ms`, or reject with the signal's reason when aborted first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** The real clock: `Date.now()` and timers. */
export const systemClock: Clock = Object.freeze({
  now: () => Date.now(),
  sleep: realSleep,
});

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
    return new Promise((resolve, reject) => {
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
