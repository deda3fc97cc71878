/**
 * The detached router's copy of the platform's routes and backends (docs/decisions.md, "The router
 * outlives the platform"). The platform pushes whole snapshots; the router process keeps serving the
 * last one while the platform is down. Backends are keyed by service and address, so that the same
 * container registered again by a restarted platform changes nothing.
 */
import { MemoryDiscovery } from '../discovery/memory-backend.js';
import type { Registration } from '../discovery/discovery.js';
import { after, type Clock, systemClock } from '../common/clock.js';
import type { Logger } from '../common/logger.js';
import { MemoryRouteSource } from '../router/route-source.js';
import type { Route } from '../router/types.js';

/** One backend of a routed service, as the platform's discovery has it. */
export interface MirroredBackend {
  addr: string;
  proto: string;
  meta: Record<string, string>;
}

/** What the platform pushes to its router process: everything the router needs. */
export interface RouterSnapshot {
  /**
   * The platform run that sent it. A backend pushed by an earlier run (before a platform restart)
   * and missing now is kept for the grace period, time for a restarted platform's host agents to
   * register the containers they adopt again; one pushed by this run is dropped at once.
   */
  session: string;
  routes: Route[];
  /** The live backends of each routed service. */
  backends: Record<string, MirroredBackend[]>;
}

export const ROUTER_MIRROR_DEFAULTS = Object.freeze({
  /** How long a backend of an earlier platform run outlives its absence from the snapshots, in ms. */
  staleGraceMs: 10_000,
});

export interface RouterMirrorOptions {
  /** Default {@link ROUTER_MIRROR_DEFAULTS}.staleGraceMs. */
  staleGraceMs?: number;
  /** Times the grace period. Default {@link systemClock}. */
  clock?: Clock;
}

interface Held {
  registration: Registration;
  session: string;
  /** When the snapshots stopped listing it (earlier runs' backends only). */
  missingSince?: number;
}

/** The route table and discovery a detached router serves from, fed by {@link RouterSnapshot}s. */
export class RouterMirror {
  readonly routes = new MemoryRouteSource();
  readonly discovery = new MemoryDiscovery();
  /** The last snapshot's session (the platform run feeding the router), or null before any. */
  session: string | null = null;
  private readonly applied = new Map<string, string>();
  private readonly held = new Map<string, Held>();
  private readonly staleGraceMs: number;
  private readonly clock: Clock;
  private cancelSweep: (() => void) | undefined;

  constructor(
    private readonly logger: Logger,
    options: RouterMirrorOptions = {},
  ) {
    this.staleGraceMs = options.staleGraceMs ?? ROUTER_MIRROR_DEFAULTS.staleGraceMs;
    this.clock = options.clock ?? systemClock;
  }

  /** Make the routes and backends those of `snapshot` (applied in order: one at a time). */
  async apply(snapshot: RouterSnapshot): Promise<void> {
    this.session = snapshot.session;
    this.applyRoutes(snapshot.routes);
    const listed = new Set<string>();
    // New backends are registered before gone ones are dropped: a service never passes through empty.
    for (const [service, backends] of Object.entries(snapshot.backends)) {
      for (const b of backends) {
        const key = `${service} ${b.addr}`;
        listed.add(key);
        const held = this.held.get(key);
        if (held) {
          held.session = snapshot.session;
          delete held.missingSince;
          continue;
        }
        // A long TTL: the registration lives in this process and goes only when the snapshots drop it.
        const registration = await this.discovery.register({ service, addr: b.addr, proto: b.proto, meta: b.meta, ttlMs: 60_000 });
        this.held.set(key, { registration, session: snapshot.session });
      }
    }
    const now = this.clock.now();
    for (const [key, held] of this.held) {
      if (listed.has(key)) continue;
      if (held.session === snapshot.session) await this.drop(key, held);
      else held.missingSince ??= now;
    }
    await this.sweep();
  }

  /** Backends held (for status): `service addr` each. */
  backends(): string[] {
    return [...this.held.keys()];
  }

  async close(): Promise<void> {
    this.cancelSweep?.();
    await this.discovery.close();
  }

  private applyRoutes(routes: Route[]): void {
    const next = new Map(routes.map((r) => [r.id, JSON.stringify(r)]));
    for (const id of this.applied.keys()) {
      if (next.has(id)) continue;
      this.routes.remove(id);
      this.applied.delete(id);
    }
    for (const route of routes) {
      const json = next.get(route.id) as string;
      if (this.applied.get(route.id) === json) continue;
      try {
        this.routes.set(route);
        this.applied.set(route.id, json);
      } catch (err) {
        this.logger.warn('route not applied', { route: route.id, error: (err as Error).message });
      }
    }
  }

  /** Drop the earlier runs' backends missing for the whole grace period; look again when the next one is due. */
  private async sweep(): Promise<void> {
    this.cancelSweep?.();
    const now = this.clock.now();
    let next = Infinity;
    for (const [key, held] of this.held) {
      if (held.missingSince === undefined) continue;
      const due = held.missingSince + this.staleGraceMs;
      if (due <= now) await this.drop(key, held);
      else next = Math.min(next, due);
    }
    if (next !== Infinity) this.cancelSweep = after(this.clock, next - now, () => void this.sweep(), { unref: true });
  }

  private async drop(key: string, held: Held): Promise<void> {
    this.held.delete(key);
    await held.registration.unregister();
  }
}
