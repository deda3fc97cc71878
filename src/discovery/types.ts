/** Wire and domain types of service discovery. Imports nothing else from the project. */

/** One live instance of a service, e.g. a job's `127.0.0.2:49153` under `myapp-web`. */
export interface Instance {
  /** Unique id of this registration (stable for its life, new on every register). */
  id: string;
  /** Service name: lowercase letters, digits and dashes, 1–63 chars, e.g. `myapp-web`, `flynn-host`. */
  service: string;
  /** `host:port` where the instance answers, e.g. `127.0.0.2:49153`. */
  addr: string;
  /** Protocol spoken at `addr`, e.g. `http` (default) or `tcp`. */
  proto: string;
  /** Free-form string metadata, e.g. `{ id: 'host-1', tags: 'ssd' }`. */
  meta: Record<string, string>;
  /**
   * Registration order within the service: lower registered earlier. The live instance with the
   * lowest index is the service's leader.
   */
  index: number;
}

export interface RegisterOptions {
  service: string;
  addr: string;
  /** Default `http`. */
  proto?: string;
  meta?: Record<string, string>;
  /** How long the instance outlives its last heartbeat, in ms. Default {@link DISCOVERY_DEFAULTS}.ttlMs. */
  ttlMs?: number;
}

/** What a watcher hears, in order: one `current`, then changes as they happen. */
export type ServiceEvent =
  | { type: 'current'; service: string; instances: Instance[]; leader: Instance | null }
  | { type: 'up'; service: string; instance: Instance }
  | { type: 'update'; service: string; instance: Instance }
  | { type: 'down'; service: string; instance: Instance }
  | { type: 'leader'; service: string; leader: Instance | null };

export const DISCOVERY_DEFAULTS = Object.freeze({
  /** Time an instance outlives its last heartbeat. */
  ttlMs: 10_000,
});

/** The answer to `PUT /services/:service/instances` on the discovery HTTP API. */
export interface RegisterResponse {
  instance: Instance;
  /** The instance is dropped this long after its last heartbeat, in ms. */
  ttlMs: number;
  /** Heartbeat at least this often, in ms. */
  heartbeatIntervalMs: number;
}
