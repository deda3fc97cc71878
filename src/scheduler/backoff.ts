/** Crash restart backoff: the first few restarts are immediate, then the delay grows to a cap. */
export interface BackoffOptions {
  /** Restarts in a row that happen at once, before any delay. Default 3. */
  immediateRestarts: number;
  /** Delay of the first delayed restart, in ms. Default 1000. */
  initialDelayMs: number;
  /** Each further restart waits this many times longer. Default 2. */
  factor: number;
  /** The longest delay, in ms. Default 30000. */
  maxDelayMs: number;
  /** A job that stayed up this long (ms) before crashing starts the count afresh. Default 60000. */
  resetAfterMs: number;
}

export const BACKOFF_DEFAULTS: Readonly<BackoffOptions> = Object.freeze({
  immediateRestarts: 3,
  initialDelayMs: 1_000,
  factor: 2,
  maxDelayMs: 30_000,
  resetAfterMs: 60_000,
});

/** The delay before restart number `attempt` (1-based) of a crashing job, in ms. */
export function restartDelay(attempt: number, options: BackoffOptions): number {
  if (attempt <= options.immediateRestarts) return 0;
  const exponent = attempt - options.immediateRestarts - 1;
  return Math.min(options.maxDelayMs, Math.round(options.initialDelayMs * options.factor ** exponent));
}

/**
 * Which restart a crash leads to: one more than the crashed job's own count, or the first again
 * when the job had been up for `resetAfterMs`.
 */
export function nextRestartAttempt(previousRestarts: number, upForMs: number | undefined, options: BackoffOptions): number {
  if (upForMs !== undefined && upForMs >= options.resetAfterMs) return 1;
  return previousRestarts + 1;
}
