import { createHmac } from 'node:crypto';
import type { Logger } from '../../common/logger.js';
import type { BackendRegistry } from '../backends.js';
import type { RouterConfig } from '../options.js';
import type { HttpRoute } from '../types.js';
import { HEALTH_CHECK_DEFAULTS } from '../health-check.js';
import { mapFiles, slotNames, type SlotKind } from './config.js';
import type { EjectTarget } from './ejector.js';
import { LiveMap } from './maps.js';
import type { RuntimeApi } from './runtime-api.js';
import { FAILED, LiveServers, type ServerNames } from './servers.js';

/**
 * Backend settings the Runtime API cannot change (`timeout connect`, `timeout check`): a slot is
 * declared with them in the configuration, so a route that needs other values waits for a reload.
 */
export interface SlotSettings {
  /** The route's `timeouts.connectMs` when it differs from the router's. */
  connectMs?: number;
  /** A checked route's `healthCheck.timeoutMs`. */
  checkTimeoutMs?: number;
}

/** A pre-declared HAProxy backend, given to one route at a time. */
interface Slot {
  name: string;
  kind: SlotKind;
  /** The health-check interval its servers are added with (a checked slot's, while it serves a route). */
  interval: number | undefined;
  route: string | undefined;
  /** The route's key in routes.map while the slot serves it. */
  key: string | undefined;
  servers: LiveServers;
  /** The dynamic cookie key set on a sticky slot. */
  cookieKey: string | undefined;
  /** Its settings in the running configuration, and those its route needs (a reload makes them equal). */
  declared: SlotSettings;
  wanted: SlotSettings;
}

/** The routes.map key of a route: `<domain><path>/`, a wildcard's `*` dropped (so `*.example.com` is `.example.com/...`). */
export function routeKey(route: HttpRoute): string {
  const path = (route.path ?? '/').replace(/\/+$/, '');
  return `${route.domain.replace(/^\*/, '')}${path}/`;
}

const kindOf = (route: HttpRoute): SlotKind => ({ sticky: Boolean(route.sticky), checked: route.healthCheck !== undefined });
const intervalOf = (route: HttpRoute) => (route.healthCheck ? (route.healthCheck.intervalMs ?? HEALTH_CHECK_DEFAULTS.intervalMs) : undefined);
const same = (a: SlotSettings, b: SlotSettings) => a.connectMs === b.connectMs && a.checkTimeoutMs === b.checkTimeoutMs;
/** Whether a slot, as declared and as its servers were added, can serve `route` (with `settings`, unless those were given up). */
const fits = (slot: Slot, route: HttpRoute, settings: SlotSettings | undefined) =>
  slot.kind.sticky === Boolean(route.sticky) &&
  slot.kind.checked === (route.healthCheck !== undefined) &&
  (slot.route !== route.id || (slot.interval === intervalOf(route) && (settings === undefined || same(slot.declared, settings))));
const free = (slot: Slot, kind: SlotKind) => slot.kind.sticky === kind.sticky && slot.kind.checked === kind.checked && slot.route === undefined && slot.servers.size === 0 && !slot.servers.draining;

/**
 * Gives each HTTP route a slot backend and keeps the slot's servers, the maps and the sticky
 * cookie key equal to the route table and the service's live backends, by Runtime API commands.
 * Slot settings only a reload can change ({@link SlotSettings}) are declared ahead on a free slot
 * ({@link reserve}); the engine reloads when {@link needsReload}, and the route then moves to that
 * slot in {@link assign} with no gap.
 */
export class SlotSync {
  private readonly slots: Slot[];
  private readonly byRoute = new Map<string, Slot>();
  readonly maps;
  private readonly warned = new Set<string>();
  /** `<route id> <settings>` a failed reload could not declare: the route is served with its slot's as they are. */
  private readonly givenUp = new Set<string>();
  /** The routes of the last {@link reserve}, by id. */
  private routes = new Map<string, HttpRoute>();
  /** Slots of routes that moved to another slot: they serve until {@link sync} has put the new one in. */
  private moving: Slot[] = [];

  constructor(
    private readonly api: RuntimeApi,
    dir: string,
    private readonly config: RouterConfig,
    private readonly backends: BackendRegistry,
    names: ServerNames,
    private readonly logger: Logger,
  ) {
    this.slots = slotNames(config.haproxy.slots).map(({ name, kind }) => ({
      name,
      kind,
      interval: undefined,
      route: undefined,
      key: undefined,
      servers: new LiveServers(api, name, names, logger),
      cookieKey: undefined,
      declared: {},
      wanted: {},
    }));
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
    return this.slots.some((s) => s.servers.draining);
  }

  /** The live server `slot/server` of an HTTP route (for the ejector's probe), undefined once retired or for another backend. */
  target(key: string): EjectTarget | undefined {
    const [slotName, serverName] = key.split('/');
    const slot = this.slots.find((s) => s.name === slotName);
    const addr = slot && serverName !== undefined ? slot.servers.addrOf(serverName) : undefined;
    if (!slot || addr === undefined) return undefined;
    const path = this.maps.healthPath.get(slot.name);
    const host = this.maps.healthHost.get(slot.name);
    const timeoutMs = this.routes.get(slot.route as string)?.healthCheck?.timeoutMs ?? HEALTH_CHECK_DEFAULTS.timeoutMs;
    return { addr, ...(path !== undefined && host !== undefined ? { check: { path, host, timeoutMs } } : {}) };
  }

  /** A slot is wanted with settings the running configuration does not declare. */
  get needsReload(): boolean {
    return this.slots.some((s) => !same(s.declared, s.wanted));
  }

  /** The settings a route needs from its slot. */
  settingsOf(route: HttpRoute): SlotSettings {
    const connectMs = route.timeouts?.connectMs;
    const checkTimeoutMs = route.healthCheck?.timeoutMs;
    return {
      ...(connectMs !== undefined && connectMs !== this.config.timeouts.connectMs ? { connectMs } : {}),
      ...(checkTimeoutMs !== undefined && checkTimeoutMs !== HEALTH_CHECK_DEFAULTS.timeoutMs ? { checkTimeoutMs } : {}),
    };
  }

  /**
   * For each route whose slot lacks the settings it needs, and with no free slot declared with them,
   * want a free slot with them (the next reload declares them). Runs first in a pass, without commands.
   */
  reserve(routes: HttpRoute[]): void {
    this.routes = new Map(routes.map((r) => [r.id, r]));
    const taken = new Set<Slot>();
    for (const route of routes) {
      const settings = this.needed(route);
      const current = this.byRoute.get(route.id);
      if (settings === undefined || (current && same(current.declared, settings))) continue;
      const kind = kindOf(route);
      const slot = this.slots.find((s) => free(s, kind) && !taken.has(s) && same(s.wanted, settings)) ?? this.slots.find((s) => free(s, kind) && !taken.has(s) && same(s.wanted, s.declared));
      if (!slot) continue;
      slot.wanted = settings;
      taken.add(slot);
    }
  }

  /** Release the slots of removed or changed routes and give new routes a slot (after {@link reserve} and a reload if it needed one). */
  async assign(routes: HttpRoute[]): Promise<void> {
    const keys = new Set(routes.map(routeKey));
    for (const slot of [...this.byRoute.values()]) {
      const route = this.routes.get(slot.route as string);
      if (!route) await this.release(slot, keys);
      else if (!fits(slot, route, this.needed(route))) {
        this.byRoute.delete(route.id);
        this.moving.push(slot);
      }
    }
    for (const route of routes) if (!this.byRoute.has(route.id)) await this.take(route);
  }

  /** Bring the assigned slots' servers and the maps to `routes` and their services' live backends. */
  async sync(routes: HttpRoute[]): Promise<void> {
    for (const route of routes) {
      const slot = this.byRoute.get(route.id);
      if (slot) await this.apply(slot, route);
    }
    const keys = new Set(routes.map(routeKey));
    for (const slot of this.moving.splice(0)) await this.release(slot, keys);
    for (const slot of this.slots) await slot.servers.reap();
  }

  /** Each slot's lines in a rewritten configuration: its settings, cookie key and servers. */
  configLines(name: string): string[] {
    const slot = this.slots.find((s) => s.name === name);
    if (!slot) return [];
    const { connectMs, checkTimeoutMs } = slot.wanted;
    return [
      ...(connectMs !== undefined ? [`  timeout connect ${connectMs}`] : []),
      ...(slot.kind.checked ? [`  timeout check ${checkTimeoutMs ?? HEALTH_CHECK_DEFAULTS.timeoutMs}`] : []),
      ...(slot.cookieKey !== undefined ? [`  dynamic-cookie-key ${slot.cookieKey}`] : []),
      ...slot.servers.configLines(),
    ];
  }

  /** The configuration written with {@link configLines} is the one running now. */
  reloaded(): void {
    for (const slot of this.slots) {
      slot.declared = slot.wanted;
      slot.servers.reloaded();
    }
  }

  /** A reload failed: routes that waited for slot settings are served with the ones there are. */
  abandon(): void {
    for (const slot of this.slots) slot.wanted = slot.declared;
    for (const route of this.routes.values()) {
      const settings = this.needed(route);
      const current = this.byRoute.get(route.id);
      if (settings === undefined || (current && same(current.declared, settings)) || this.slots.some((s) => free(s, kindOf(route)) && same(s.declared, settings))) continue;
      this.logger.warn(`route ${route.id}: served without its own connect/check timeouts (the reload that applies them failed)`);
      this.givenUp.add(this.givenUpKey(route));
    }
  }

  /** The settings a route needs from its slot, or undefined once a failed reload gave them up. */
  private needed(route: HttpRoute): SlotSettings | undefined {
    return this.givenUp.has(this.givenUpKey(route)) ? undefined : this.settingsOf(route);
  }

  private givenUpKey(route: HttpRoute): string {
    return `${route.id} ${JSON.stringify(this.settingsOf(route))}`;
  }

  private async take(route: HttpRoute): Promise<void> {
    const kind = kindOf(route);
    const settings = this.needed(route);
    const open = this.slots.filter((s) => free(s, kind));
    // One declared with the settings needed ({@link reserve} saw to it); else, with none free, the route is served without them.
    const slot = (settings && open.find((s) => same(s.declared, settings))) || open.find((s) => same(s.declared, s.wanted)) || open[0];
    if (!slot) {
      if (!this.warned.has(route.id)) this.logger.error('haproxy engine: no free slot for route (raise haproxy.slots)', { route: route.id, slots: this.config.haproxy.slots });
      this.warned.add(route.id);
      return;
    }
    this.warned.delete(route.id);
    slot.route = route.id;
    slot.interval = intervalOf(route);
    slot.wanted = slot.declared;
    this.byRoute.set(route.id, slot);
    if (slot.kind.sticky) {
      // The cookie value is HAProxy's hash of this key and the server's address: routers sharing stickyKey agree.
      slot.cookieKey = createHmac('sha256', this.config.stickyKey).update(route.id).digest('hex');
      await this.api.run(`set dynamic-cookie-key backend ${slot.name} ${slot.cookieKey}`, { failure: FAILED });
      await this.api.run(`enable dynamic-cookie backend ${slot.name}`, { failure: FAILED });
    }
  }

  private async apply(slot: Slot, route: HttpRoute): Promise<void> {
    // The check request is in place before the first server (and its first check).
    await this.maps.healthPath.put(slot.name, route.healthCheck?.path);
    await this.maps.healthHost.put(slot.name, route.healthCheck ? route.domain.replace(/^\*\./, '') : undefined);
    const live = this.backends.get(route.service)?.backends ?? [];
    const added = await slot.servers.follow(new Set(live.map((b) => b.addr)), this.serverParams(slot));
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

  /** The `add server` keywords of a slot's servers. */
  private serverParams(slot: Slot): string {
    const c = this.config;
    // observe layer7: ejectAfterFailures errors in a row (connection errors, timeouts, and 500/502-504 answers) mark it down;
    // then a check every baseEjectionMs puts it back once it passes: a TCP connect, or the route's health check (every
    // `intervalMs` while up, and one failure marks it down).
    const check = `check inter ${slot.interval ?? c.baseEjectionMs} downinter ${c.baseEjectionMs} fall 1 rise 1 observe layer7 error-limit ${c.ejectAfterFailures} on-error mark-down`;
    // A dynamic server gets no idle connection pool unless asked (HAProxy 2.6 leaves its limit and purge delay at 0): without
    // these, every request opened a new backend connection (4x fewer req/s than the same server declared in the file).
    return `pool-max-conn -1 pool-purge-delay 5s ${check}`;
  }

  private async release(slot: Slot, keep: ReadonlySet<string>): Promise<void> {
    if (this.byRoute.get(slot.route as string) === slot) this.byRoute.delete(slot.route as string);
    slot.route = undefined;
    if (slot.key !== undefined && !keep.has(slot.key)) await this.maps.routes.delete(slot.key);
    slot.key = undefined;
    slot.interval = undefined;
    slot.wanted = slot.declared;
    for (const map of [this.maps.service, this.maps.redirect, this.maps.serverTimeout, this.maps.tunnelTimeout, this.maps.healthPath, this.maps.healthHost]) await map.delete(slot.name);
    await slot.servers.clear();
  }
}
