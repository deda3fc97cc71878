import { Pool } from 'undici';
import type { Logger } from '../common/logger.js';
import { sleep } from '../common/lifecycle.js';
import type { Discovery, ServiceWatch } from '../discovery/discovery.js';
import type { Instance } from '../discovery/types.js';
import { H1Pool } from './h1-pool.js';

/**
 * One live instance of a service as the router sees it: its address, load and connection pools.
 * Requests without a body on the node engine's fast path use its own keep-alive connections
 * (`h1()`), other HTTP requests and Upgrades undici's (`dispatcher()`); TCP routes open their own
 * connections. `inFlight` counts them all (docs/decisions.md, "two connection pools per backend").
 */
export class Backend {
  readonly host: string;
  readonly port: number;
  /** Requests (or TCP connections) being served right now. */
  inFlight = 0;
  /** Out of the balancer's rotation until a probe succeeds (see outlier.ts). */
  ejected = false;
  /** Connection failures in a row. */
  failures = 0;
  /** Ejections in a row (each doubles the next interval) and when the last one began (ms epoch). */
  ejections = 0;
  lastEjectedAt = 0;
  /** The HTTP check of a route with `healthCheck` on this backend's service: probes use it instead of a TCP connect. */
  check: { path: string; host: string; timeoutMs: number } | undefined;
  /** Gone from discovery: no new requests, in-flight ones finish. */
  removed = false;
  /** The keep-alive pool, per connect timeout in use (a route may override the router's). */
  private readonly pools = new Map<number, Pool>();
  /** The router's own keep-alive connections, for requests without a body (h1-exchange.ts). */
  private h1Pool: H1Pool | undefined;

  constructor(
    readonly id: string,
    readonly addr: string,
  ) {
    const colon = addr.lastIndexOf(':');
    const host = addr.slice(0, colon);
    this.host = host.startsWith('[') ? host.slice(1, -1) : host;
    this.port = Number(addr.slice(colon + 1));
  }

  /** The keep-alive pool with this connect timeout (made on first use). */
  dispatcher(connectTimeoutMs: number): Pool {
    let pool = this.pools.get(connectTimeoutMs);
    if (!pool) {
      pool = new Pool(`http://${this.addr}`, { pipelining: 1, keepAliveTimeout: 60_000, connectTimeout: connectTimeoutMs});
      this.pools.set(connectTimeoutMs, pool);
    }
    return pool;
  }

  /** The fast path's connection pool (made on first use). */
  h1(): H1Pool {
    return (this.h1Pool ??= new H1Pool(this.host, this.port, 60_000));
  }

  acquire(): void {
    this.inFlight++;
  }

  release(): void {
    this.inFlight--;
    if (this.removed && this.inFlight === 0) this.destroy();
  }

  /** Close idle pooled connections; busy ones close when their request ends. */
  destroy(): void {
    for (const pool of this.pools.values()) void pool.close().catch(() => undefined);
    this.pools.clear();
    this.h1Pool?.close();
    this.h1Pool = undefined;
  }
}

/** The live backends of one service, kept current from a discovery watch. */
export class ServicePool {
  /** Array for O(1) random picks. */
  backends: Backend[] = [];
  private readonly byId = new Map<string, Backend>();
  private readyResolve!: () => void;
  /** Resolves once discovery delivered the first instance list. */
  readonly ready: Promise<void>;
  isReady = false;
  refs = 0;

  constructor(
    readonly service: string,
    /** Runs after each change of the set (a data plane outside this process follows it). */
    private readonly changed: () => void = () => undefined,
  ) {
    this.ready = new Promise((resolve) => (this.readyResolve = resolve));
  }

  /**
   * Power of two choices: two random live backends, the one with fewer requests in flight.
   * Backends in `exclude` (already tried for this request) are skipped; ejected ones are avoided
   * while others are left. A retry (`exclude` given) takes the one of the two the router has known
   * longer instead: in a deploy the newest backends are the new release's jobs, the likeliest to be
   * failing (a release whose jobs crash together), so a retry reaches the old release's.
   */
  pick(exclude?: ReadonlySet<Backend>): Backend | undefined {
    const all = this.backends;
    if (all.length === 0) return undefined;
    if (all.length === 1 && exclude === undefined) return all[0];
    let candidates = all;
    if (exclude !== undefined || all.some((b) => b.ejected)) {
      const open = all.filter((b) => !exclude?.has(b));
      const healthy = open.filter((b) => !b.ejected);
      candidates = healthy.length > 0 ? healthy : open;
    }
    const n = candidates.length;
    if (n === 0) return undefined;
    if (n === 1) return candidates[0];
    const i = Math.floor(Math.random() * n);
    let j = Math.floor(Math.random() * (n - 1));
    if (j >= i) j++;
    const a = candidates[i] as Backend;
    const b = candidates[j] as Backend;
    // `backends` is in the order the router learned of them (discovery lists oldest first).
    if (exclude !== undefined) return i < j ? a : b;
    return b.inFlight < a.inFlight ? b : a;
  }

  byAddr(addr: string): Backend | undefined {
    for (const b of this.backends) if (b.addr === addr) return b;
    return undefined;
  }

  /** Replace the whole set (a `current` event): unchanged instances keep their pools and counts. */
  reset(instances: (Pick<Instance, 'id' | 'addr'> & Partial<Instance>)[]): void {
    const seen = new Set<string>();
    for (const instance of instances) {
      seen.add(instance.id);
      this.upsert(instance);
    }
    for (const id of [...this.byId.keys()]) if (!seen.has(id)) this.remove(id);
    if (!this.isReady) {
      this.isReady = true;
      this.readyResolve();
    }
    this.changed();
  }

  upsert(instance: Pick<Instance, 'id' | 'addr'> & Partial<Instance>): void {
    const existing = this.byId.get(instance.id);
    if (existing && existing.addr === instance.addr) return;
    if (existing) this.remove(instance.id);
    const backend = new Backend(instance.id, instance.addr);
    this.byId.set(instance.id, backend);
    this.backends = [...this.backends, backend];
    this.changed();
  }

  remove(id: string): void {
    const backend = this.byId.get(id);
    if (!backend) return;
    this.byId.delete(id);
    this.backends = this.backends.filter((b) => b !== backend);
    backend.removed = true;
    if (backend.inFlight === 0) backend.destroy();
    this.changed();
  }

  /** Drop everything (the service is no longer routed to, or the router closes). */
  clear(): void {
    for (const id of [...this.byId.keys()]) this.remove(id);
  }
}

export interface BackendRegistryOptions {
  discovery: Discovery;
  logger: Logger;
  rewatchDelayMs: number;
}

/** One {@link ServicePool} per routed service, each fed by its own discovery watch, shared by routes. */
export class BackendRegistry {
  private readonly pools = new Map<string, { pool: ServicePool; watch: ServiceWatch | undefined; stop: AbortController }>();
  private closed = false;
  /** Called with the service whose backends changed (the haproxy engine follows them). */
  readonly listeners = new Set<(service: string) => void>();

  constructor(private readonly options: BackendRegistryOptions) {}

  get(service: string): ServicePool | undefined {
    return this.pools.get(service)?.pool;
  }

  services(): string[] {
    return [...this.pools.keys()];
  }

  /** Take a reference on a service's pool, starting its watch on first use. */
  acquire(service: string): ServicePool {
    let entry = this.pools.get(service);
    if (!entry) {
      const pool = new ServicePool(service, () => {
        for (const listener of this.listeners) listener(service);
      });
      entry = { pool, watch: undefined, stop: new AbortController() };
      this.pools.set(service, entry);
      void this.follow(entry);
    }
    entry.pool.refs++;
    return entry.pool;
  }

  /** Drop a reference; the last one stops the watch (in-flight requests still finish). */
  release(service: string): void {
    const entry = this.pools.get(service);
    if (!entry || --entry.pool.refs > 0) return;
    this.pools.delete(service);
    entry.stop.abort();
    entry.watch?.close();
    entry.pool.clear();
  }

  close(): void {
    this.closed = true;
    for (const service of [...this.pools.keys()]) {
      const entry = this.pools.get(service);
      if (entry) entry.pool.refs = 1;
      this.release(service);
    }
  }

  private async follow(entry: { pool: ServicePool; watch: ServiceWatch | undefined; stop: AbortController }): Promise<void> {
    const { pool, stop } = entry;
    const log = this.options.logger;
    while (!stop.signal.aborted && !this.closed) {
      try {
        entry.watch = this.options.discovery.watch(pool.service, { signal: stop.signal });
        for await (const event of entry.watch) {
          switch (event.type) {
            case 'current':
              pool.reset(event.instances);
              log.debug('backends', { service: pool.service, addrs: event.instances.map((i) => i.addr) });
              break;
            case 'up':
            case 'update':
              pool.upsert(event.instance);
              log.debug('backend up', { service: pool.service, addr: event.instance.addr });
              break;
            case 'down':
              pool.remove(event.instance.id);
              log.debug('backend down', { service: pool.service, addr: event.instance.addr });
              break;
          }
        }
        if (stop.signal.aborted || this.closed) return;
        log.warn('discovery watch ended; watching again', { service: pool.service });
      } catch (err) {
        if (stop.signal.aborted || this.closed) return;
        log.warn('discovery watch failed; watching again', { service: pool.service, error: (err as Error).message });
      }
      try {
        await sleep(this.options.rewatchDelayMs, stop.signal);
      } catch {
        return;
      }
    }
  }
}
