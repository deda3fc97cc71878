import type { Closable } from '../common/lifecycle.js';
import type { Instance, RegisterOptions, ServiceEvent } from './types.js';

/**
 * A live registration. Heartbeats run in the background until `unregister()`/`close()`; if they
 * stop (the process dies), the instance disappears within its TTL.
 */
export interface Registration extends Closable {
  /** The instance as registered; `meta` follows `setMeta`. */
  readonly instance: Instance;
  /** Replace the instance's meta; watchers see an `update`. */
  setMeta(meta: Record<string, string>): Promise<void>;
  /** Remove the instance now; watchers see `down`. Idempotent; same as `close()`. */
  unregister(): Promise<void>;
  /**
   * Resolves if the registration is lost without `unregister()` (its lease expired or was revoked
   * and could not be renewed). Backends re-register automatically where they can; this tells the
   * owner it must act when they cannot.
   */
  readonly lost: Promise<Error>;
}

/**
 * A stream of {@link ServiceEvent}s for one service: first `current`, then changes. Ends when
 * `close()` is called, the loop breaks, the `signal` aborts, or the backend is closed.
 */
export interface ServiceWatch extends AsyncIterable<ServiceEvent> {
  close(): void;
}

export interface WatchOptions {
  signal?: AbortSignal;
}

/** The service discovery seam (Flynn's discoverd). Implemented by the memory, etcd and http backends. */
export interface Discovery extends Closable {
  /** Register an instance and keep it alive with heartbeats. */
  register(options: RegisterOptions): Promise<Registration>;
  /** The live instances of a service, oldest first. */
  instances(service: string): Promise<Instance[]>;
  /** The live instance with the lowest index, or null. */
  leader(service: string): Promise<Instance | null>;
  /** Follow a service. */
  watch(service: string, options?: WatchOptions): ServiceWatch;
}
