/**
 * An error for one of the router's own timers; its kind is its `code`, which `classify`
 * (outlier.ts) recognises. A module of its own so that the connection pools need not import the
 * outlier detector, which imports the backends that hold the pools.
 */
export function timeoutError(kind: 'connect-timeout' | 'headers-timeout' | 'idle-timeout', ms: number): Error & { code: string } {
  return Object.assign(new Error(`${kind} after ${ms} ms`), { code: kind });
}
