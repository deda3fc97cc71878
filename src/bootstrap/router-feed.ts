/**
 * Feed a detached router from the platform: follow the routes and, for each routed service, its
 * backends in discovery, and push the whole picture as a {@link RouterSnapshot} on every change
 * (coalesced: at most one push in flight, then the latest state).
 */
import { randomUUID } from 'node:crypto';
import { sleep } from '../common/lifecycle.js';
import type { Logger } from '../common/logger.js';
import type { Discovery } from '../discovery/discovery.js';
import type { Instance } from '../discovery/types.js';
import type { RouteSource } from '../router/route-source.js';
import type { Route } from '../router/types.js';
import type { RouterSnapshot } from './router-mirror.js';

export interface RouterFeedOptions {
  routes: RouteSource;
  discovery: Discovery;
  push: (snapshot: RouterSnapshot) => Promise<void>;
  logger: Logger;
  /** Wait before a failed push or a lost watch is tried again, in ms. Default 250. */
  retryMs?: number;
}

export interface RouterFeed {
  /** Resolves after the first snapshot (with the whole route table) reached the router. */
  readonly synced: Promise<void>;
  /** Push the latest snapshot again (to a router process started anew). */
  resend(): void;
  close(): Promise<void>;
}

interface Followed {
  stop: AbortController;
  instances: Map<string, Instance>;
}

export function feedRouter(options: RouterFeedOptions): RouterFeed {
  const { discovery, logger } = options;
  const retryMs = options.retryMs ?? 250;
  const session = randomUUID();
  const stop = new AbortController();
  const routes = new Map<string, Route>();
  const services = new Map<string, Followed>();
  let routesKnown = false;
  let pushing: Promise<void> | undefined;
  let dirty = false;
  let resolveSynced!: () => void;
  const synced = new Promise<void>((resolve) => (resolveSynced = resolve));

  const snapshot = (): RouterSnapshot => ({
    session,
    routes: [...routes.values()],
    backends: Object.fromEntries([...services].map(([name, f]) => [name, [...f.instances.values()].map((i) => ({ addr: i.addr, proto: i.proto, meta: i.meta }))])),
  });

  const changed = () => {
    dirty = true;
    if (!routesKnown || pushing || stop.signal.aborted) return;
    pushing = (async () => {
      while (dirty && !stop.signal.aborted) {
        dirty = false;
        try {
          await options.push(snapshot());
          resolveSynced();
        } catch (err) {
          logger.warn('cannot push to the router process; trying again', { error: (err as Error).message });
          dirty = true;
          await sleep(retryMs, stop.signal).catch(() => undefined);
        }
      }
    })().finally(() => (pushing = undefined));
  };

  /** Run `watch` again after it ends or fails, until the feed closes. */
  const keepWatching = (what: string, signal: AbortSignal, watch: () => Promise<void>) =>
    void (async () => {
      while (!signal.aborted) {
        try {
          await watch();
        } catch (err) {
          if (!signal.aborted) logger.warn(`${what} watch failed; watching again`, { error: (err as Error).message });
        }
        await sleep(retryMs, signal).catch(() => undefined);
      }
    })();

  const followService = (service: string) => {
    const followed: Followed = { stop: new AbortController(), instances: new Map() };
    services.set(service, followed);
    const signal = AbortSignal.any([stop.signal, followed.stop.signal]);
    keepWatching(`discovery (${service})`, signal, async () => {
      for await (const event of discovery.watch(service, { signal })) {
        if (event.type === 'current') followed.instances = new Map(event.instances.map((i) => [i.id, i]));
        else if (event.type === 'up' || event.type === 'update') followed.instances.set(event.instance.id, event.instance);
        else if (event.type === 'down') followed.instances.delete(event.instance.id);
        else continue;
        changed();
      }
    });
  };

  const routesChanged = () => {
    const wanted = new Set([...routes.values()].map((r) => r.service));
    for (const [service, followed] of services) {
      if (wanted.has(service)) continue;
      followed.stop.abort();
      services.delete(service);
    }
    for (const service of wanted) if (!services.has(service)) followService(service);
    changed();
  };

  keepWatching('route', stop.signal, async () => {
    for await (const event of options.routes.watch({ signal: stop.signal })) {
      if (event.type === 'current') {
        routes.clear();
        for (const r of event.routes) routes.set(r.id, r);
        routesKnown = true;
      } else if (event.type === 'set') routes.set(event.route.id, event.route);
      else routes.delete(event.id);
      routesChanged();
    }
  });

  return {
    synced,
    resend: changed,
    async close() {
      stop.abort();
      await pushing;
    },
  };
}
