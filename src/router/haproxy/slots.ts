import { createHmac } from 'node:crypto';
import type { Logger } from '../../common/logger.js';
import type { BackendRegistry } from '../backends.js';
import type { RouterConfig } from '../options.js';
import type { HttpRoute } from '../types.js';
import { HEALTH_CHECK_DEFAULTS } from '../health-check.js';
import { mapFiles, slotNames, type SlotKind } from './config.js';
import type { EjectTarget } from './ejector.js';
import { LiveMap } from './maps.js';
import { RuntimeApi, RuntimeApiError } from './runtime-api.js';

const FAILED = /error|invalid|unknown|not found|no such|can't|cannot|require|only/i;

/** A pre-declared HAProxy backend, given to one route at a time. */
interface Slot {
  name: string;
  kind: SlotKind;
  /** The health-check interval its servers are added with (a checked slot's, while it serves a route). */
  interval: number | undefined;
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

const kindOf = (route: HttpRoute): SlotKind => ({ sticky: Boolean(route.sticky), checked: route.healthCheck !== undefined });
const intervalOf = (route: HttpRoute) => (route.healthCheck ? (route.healthCheck.intervalMs ?? HEALTH_CHECK_DEFAULTS.intervalMs) : undefined);
/** Whether a slot, as declared and as its servers were added, can serve `route`. */
const fits = (slot: Slot, route: HttpRoute) => slot.kind.sticky === Boolean(route.sticky) && slot.kind.checked === (route.healthCheck !== undefined) && (slot.route !== route.id || slot.interval === intervalOf(route));

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
    this.slots = slotNames(config.haproxy.slots).map(({ name, kind }) => ({ name, kind, interval: undefined, route: undefined, key: undefined, servers: new Map(), dying: new Set() }));
    const files = mapFiles(dir);
    this.maps = {
      routes: new LiveMap(api, files.routes),
      service: new LiveMap(api, files.service),
      redirect: new LiveMap(api, files.redirect),
      serverTimeout: new LiveMap(api, files.serverTimeout),
      tunnelTimeout: new LiveMap(api, files.tunnelTimeout),
      healthPath: new LiveMap(api, files.healthPath),
      healthHost: new LiveMap(api, files.healthHost),
    };
  }

  /** Servers still draining before they can be deleted. */
  get draining(): boolean {
    return this.slots.some((s) => s.dying.size > 0);
  }

  /** The live server `slot/server` (for the ejector's probe), undefined once retired. */
  target(key: string): EjectTarget | undefined {
    const [slotName, serverName] = key.split('/');
    const slot = this.slots.find((s) => s.name === slotName);
    const addr = slot && [...slot.servers].find(([, name]) => name === serverName)?.[0];
    if (!slot || addr === undefined) return undefined;
    const path = this.maps.healthPath.get(slot.name);
    const host = this.maps.healthHost.get(slot.name);
    return { addr, ...(path !== undefined && host !== undefined ? { check: { path, host, timeoutMs: slot.interval ?? HEALTH_CHECK_DEFAULTS.intervalMs } } : {}) };
  }

  /** Bring HAProxy to `routes` and their services' live backends. */
  async sync(routes: HttpRoute[]): Promise<void> {
    const wanted = new Map(routes.map((r) => [r.id, r]));
    const keys = new Set(routes.map(routeKey));
    for (const slot of this.byRoute.values()) {
      const route = wanted.get(slot.route as string);
      if (!route || !fits(slot, route)) await this.release(slot, keys);
    }
    for (const route of routes) {
      const slot = this.byRoute.get(route.id) ?? (await this.assign(route));
      if (slot) await this.apply(slot, route);
    }
    for (const slot of this.slots) for (const name of [...slot.dying]) await this.reap(slot, name);
  }

  private async assign(route: HttpRoute): Promise<Slot | undefined> {
    const kind = kindOf(route);
    const slot = this.slots.find((s) => s.kind.sticky === kind.sticky && s.kind.checked === kind.checked && s.route === undefined && s.servers.size === 0 && s.dying.size === 0);
    if (!slot) {
      if (!this.warned.has(route.id)) this.logger.error('haproxy engine: no free slot for route (raise haproxy.slots)', { route: route.id, slots: this.config.haproxy.slots });
      this.warned.add(route.id);
      return undefined;
    }
    this.warned.delete(route.id);
    slot.route = route.id;
    slot.interval = intervalOf(route);
    this.byRoute.set(route.id, slot);
    if (slot.kind.sticky) {
      // The cookie value is HAProxy's hash of this key and the server's address: routers sharing stickyKey agree.
      const key = createHmac('sha256', this.config.stickyKey).update(route.id).digest('hex');
      await this.api.run(`set dynamic-cookie-key backend ${slot.name} ${key}`, { failure: FAILED });
      await this.api.run(`enable dynamic-cookie backend ${slot.name}`, { failure: FAILED });
    }
    return slot;
  }

  private async apply(slot: Slot, route: HttpRoute): Promise<void> {
    if (route.timeouts?.connectMs !== undefined && !this.warned.has(`${route.id}:unsupported`)) {
      this.warned.add(`${route.id}:unsupported`);
      this.logger.warn(`route ${route.id}: timeouts.connectMs not supported by the haproxy engine (ignored; docs/router.md#engines)`);
    }
    // The check request is in place before the first server (and its first check).
    await this.maps.healthPath.put(slot.name, route.healthCheck?.path);
    await this.maps.healthHost.put(slot.name, route.healthCheck ? route.domain.replace(/^\*\./, '') : undefined);
    const live = this.backends.get(route.service)?.backends ?? [];
    const addrs = new Set(live.map((b) => b.addr));
    let added = false;
    for (const addr of addrs) {
      if (slot.servers.has(addr)) continue;
      await this.addServer(slot, addr);
      added = true;
    }
    for (const [addr, name] of slot.servers) if (!addrs.has(addr)) await this.retire(slot, addr, name);
    if (added && slot.kind.sticky) await this.api.run(`enable dynamic-cookie backend ${slot.name}`, { failure: FAILED });
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
    // observe layer7: ejectAfterFailures errors in a row (connection errors, timeouts, and 500/502-504 answers) mark it down;
    // then a check every baseEjectionMs puts it back once it passes: a TCP connect, or the route's health check (every
    // `intervalMs` while up, and one failure marks it down).
    const check = `check inter ${slot.interval ?? c.baseEjectionMs} downinter ${c.baseEjectionMs} fall 1 rise 1 observe layer7 error-limit ${c.ejectAfterFailures} on-error mark-down`;
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
    slot.interval = undefined;
    for (const map of [this.maps.service, this.maps.redirect, this.maps.serverTimeout, this.maps.tunnelTimeout, this.maps.healthPath, this.maps.healthHost]) await map.delete(slot.name);
    for (const [addr, name] of [...slot.servers]) await this.retire(slot, addr, name);
  }
}
