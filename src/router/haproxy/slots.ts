import { createHmac } from 'node:crypto';
import type { Logger } from '../../common/logger.js';
import type { BackendRegistry } from '../backends.js';
import type { RouterConfig } from '../options.js';
import type { HttpRoute } from '../types.js';
import { mapFiles, slotNames } from './config.js';
import { LiveMap } from './maps.js';
import { RuntimeApi, RuntimeApiError } from './runtime-api.js';

const FAILED = /error|invalid|unknown|not found|no such|can't|cannot|require|only/i;

/** A pre-declared HAProxy backend, given to one route at a time. */
interface Slot {
  name: string;
  sticky: boolean;
  route: string | undefined;
  /** The route's key in routes.map while the slot serves it. */
  key: string | undefined;
  /** backend address → server name. */
  servers: Map<string, string>;
  /** Servers in maintenance waiting for their connections to end before `del server`. */
  dying: Set<string>;
}

/** The routes.map key of a route: `<domain><path>/`, a wildcard's `*` dropped (so `*.example.com` is `.example.com/...`). */
export function routeKey(route: HttpRoute): string {
  const path = (route.path ?? '/').replace(/\/+$/, '');
  return `${route.domain.replace(/^\*/, '')}${path}/`;
}

/**
 * Gives each HTTP route a slot backend and keeps the slot's servers, the maps and the sticky
 * cookie key equal to the route table and the service's live backends, by Runtime API commands.
 */
export class SlotSync {
  private readonly slots: Slot[];
  private readonly byRoute = new Map<string, Slot>();
  private readonly maps;
  private nextServer = 0;
  private readonly warned = new Set<string>();

  constructor(
    private readonly api: RuntimeApi,
    dir: string,
    private readonly config: RouterConfig,
    private readonly backends: BackendRegistry,
    private readonly logger: Logger,
  ) {
    const names = slotNames(config.haproxy.slots);
    const slot = (name: string, sticky: boolean): Slot => ({ name, sticky, route: undefined, key: undefined, servers: new Map(), dying: new Set() });
    this.slots = [...names.plain.map((n) => slot(n, false)), ...names.sticky.map((n) => slot(n, true))];
    const files = mapFiles(dir);
    this.maps = {
      routes: new LiveMap(api, files.routes),
      service: new LiveMap(api, files.service),
      redirect: new LiveMap(api, files.redirect),
      serverTimeout: new LiveMap(api, files.serverTimeout),
      tunnelTimeout: new LiveMap(api, files.tunnelTimeout),
    };
  }

  /** Servers still draining before they can be deleted. */
  get draining(): boolean {
    return this.slots.some((s) => s.dying.size > 0);
  }

  /** Bring HAProxy to `routes` and their services' live backends. */
  async sync(routes: HttpRoute[]): Promise<void> {
    const wanted = new Map(routes.map((r) => [r.id, r]));
    const keys = new Set(routes.map(routeKey));
    for (const slot of this.byRoute.values()) {
      const route = wanted.get(slot.route as string);
      if (!route || Boolean(route.sticky) !== slot.sticky) await this.release(slot, keys);
    }
    for (const route of routes) {
      const slot = this.byRoute.get(route.id) ?? (await this.assign(route));
      if (slot) await this.apply(slot, route);
    }
    for (const slot of this.slots) for (const name of [...slot.dying]) await this.reap(slot, name);
  }

  private async assign(route: HttpRoute): Promise<Slot | undefined> {
    const slot = this.slots.find((s) => s.sticky === Boolean(route.sticky) && s.route === undefined && s.servers.size === 0 && s.dying.size === 0);
    if (!slot) {
      if (!this.warned.has(route.id)) this.logger.error('haproxy engine: no free slot for route (raise haproxy.slots)', { route: route.id, slots: this.config.haproxy.slots });
      this.warned.add(route.id);
      return undefined;
    }
    this.warned.delete(route.id);
    slot.route = route.id;
    this.byRoute.set(route.id, slot);
    if (slot.sticky) {
      // The cookie value is HAProxy's hash of this key and the server's address: routers sharing stickyKey agree.
      const key = createHmac('sha256', this.config.stickyKey).update(route.id).digest('hex');
      await this.api.run(`set dynamic-cookie-key backend ${slot.name} ${key}`, { failure: FAILED });
      await this.api.run(`enable dynamic-cookie backend ${slot.name}`, { failure: FAILED });
    }
    return slot;
  }

  private async apply(slot: Slot, route: HttpRoute): Promise<void> {
    const unsupported = [route.timeouts?.connectMs !== undefined ? 'timeouts.connectMs' : undefined, route.healthCheck ? 'healthCheck' : undefined].filter(Boolean);
    if (unsupported.length > 0 && !this.warned.has(`${route.id}:unsupported`)) {
      this.warned.add(`${route.id}:unsupported`);
      this.logger.warn(`route ${route.id}: ${unsupported.join(' and ')} not supported by the haproxy engine (ignored; docs/router.md#engines)`);
    }
    const live = this.backends.get(route.service)?.backends ?? [];
    const addrs = new Set(live.map((b) => b.addr));
    let added = false;
    for (const addr of addrs) {
      if (slot.servers.has(addr)) continue;
      await this.addServer(slot, addr);
      added = true;
    }
    for (const [addr, name] of slot.servers) if (!addrs.has(addr)) await this.retire(slot, addr, name);
    if (added && slot.sticky) await this.api.run(`enable dynamic-cookie backend ${slot.name}`, { failure: FAILED });
    const t = route.timeouts;
    await this.maps.service.set(slot.name, route.service);
    await this.maps.redirect.put(slot.name, route.redirectHttps ? '1' : undefined);
    const serverMs = t?.responseHeadersMs ?? t?.idleMs;
    await this.maps.serverTimeout.put(slot.name, serverMs === undefined ? undefined : String(serverMs));
    await this.maps.tunnelTimeout.put(slot.name, t?.websocketIdleMs === undefined ? undefined : String(t.websocketIdleMs));
    const key = routeKey(route);
    // The key goes in last: the route is served once its servers are in.
    await this.maps.routes.set(key, slot.name);
    if (slot.key !== undefined && slot.key !== key && this.maps.routes.get(slot.key) === slot.name) await this.maps.routes.delete(slot.key);
    slot.key = key;
  }

  private async addServer(slot: Slot, addr: string): Promise<void> {
    const name = `b${this.nextServer++}`;
    const c = this.config;
    // observe layer7: ejectAfterFailures errors in a row (connection errors, resets, timeouts, and 500/502-504 answers) mark it down;
    // then a TCP check every baseEjectionMs puts it back once it accepts.
    const check = `check inter ${c.baseEjectionMs} downinter ${c.baseEjectionMs} fall 1 rise 1 observe layer7 error-limit ${c.ejectAfterFailures} on-error mark-down`;
    // A dynamic server gets no idle connection pool unless asked (HAProxy 2.6 leaves its limit and purge delay at 0): without
    // these, every request opened a new backend connection (4x fewer req/s than the same server declared in the file).
    const pool = 'pool-max-conn -1 pool-purge-delay 5s';
    try {
      await this.api.run(`add server ${slot.name}/${name} ${addr} ${pool} ${check}`, { failure: FAILED });
      await this.api.run(`enable server ${slot.name}/${name}`, { failure: FAILED });
      await this.api.run(`enable health ${slot.name}/${name}`, { failure: FAILED });
      slot.servers.set(addr, name);
    } catch (err) {
      this.logger.warn('haproxy engine: cannot add server', { slot: slot.name, addr, error: (err as Error).message });
    }
  }

  /** Out of rotation now; deleted once its connections end (requests in flight finish). */
  private async retire(slot: Slot, addr: string, name: string): Promise<void> {
    slot.servers.delete(addr);
    await this.api.run(`set server ${slot.name}/${name} state maint`, { failure: FAILED }).catch((err: unknown) => this.logger.warn('haproxy engine: cannot drain server', { error: (err as Error).message }));
    slot.dying.add(name);
    await this.reap(slot, name);
  }

  private async reap(slot: Slot, name: string): Promise<void> {
    try {
      await this.api.run(`del server ${slot.name}/${name}`, { failure: FAILED });
      slot.dying.delete(name);
    } catch (err) {
      if (!(err instanceof RuntimeApiError) || !/connections|still/i.test(err.message)) {
        this.logger.warn('haproxy engine: cannot delete server', { error: (err as Error).message });
        slot.dying.delete(name);
      }
    }
  }

  private async release(slot: Slot, keep: ReadonlySet<string>): Promise<void> {
    this.byRoute.delete(slot.route as string);
    slot.route = undefined;
    if (slot.key !== undefined && !keep.has(slot.key)) await this.maps.routes.delete(slot.key);
    slot.key = undefined;
    for (const map of [this.maps.service, this.maps.redirect, this.maps.serverTimeout, this.maps.tunnelTimeout]) await map.delete(slot.name);
    for (const [addr, name] of [...slot.servers]) await this.retire(slot, addr, name);
  }
}
