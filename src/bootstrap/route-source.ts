/** The controller's store as the router's {@link RouteSource}: list + watch. */
import { AsyncQueue } from '../common/async-queue.js';
import type { Store } from '../controller/store.js';
import type { Route as ControllerRoute } from '../controller/route-types.js';
import type { RouteSource, RouteWatchOptions } from '../router/route-source.js';
import type { Route, RouteEvent } from '../router/types.js';

/** A controller route as the router takes it. */
export function toRouterRoute(r: ControllerRoute): Route {
  if (r.type === 'tcp') return { id: r.id, type: 'tcp', port: r.port, service: r.service };
  const route: Route = { id: r.id, type: 'http', domain: r.domain, path: r.path, service: r.service, sticky: r.sticky };
  if (r.tls) route.tls = { cert: r.tls.cert, key: r.tls.key };
  if (r.acme?.challenge) route.acmeChallenge = { ...r.acme.challenge };
  if (r.timeouts) route.timeouts = { ...r.timeouts };
  if (r.healthCheck) route.healthCheck = { ...r.healthCheck };
  if (r.redirectHttps) route.redirectHttps = true;
  return route;
}

export class StoreRouteSource implements RouteSource {
  constructor(private readonly store: Store) {}

  async list(): Promise<Route[]> {
    return (await this.store.listRoutes()).map(toRouterRoute);
  }

  watch(options: RouteWatchOptions = {}): AsyncIterable<RouteEvent> {
    // The store watch is cancelled as soon as the consumer stops or its signal aborts, even while
    // it waits for a change (an async generator could not be returned from in that state).
    const abort = new AbortController();
    const onAbort = () => abort.abort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const out = new AsyncQueue<RouteEvent>(() => {
      options.signal?.removeEventListener('abort', onAbort);
      abort.abort();
    });
    // Subscribe before listing, so that no change between the two is lost.
    const changes = this.store.watchRoutes({ signal: abort.signal });
    void (async () => {
      const iterator = changes[Symbol.asyncIterator]();
      const first = iterator.next();
      first.catch(() => undefined);
      out.push({ type: 'current', routes: await this.list() });
      for (let next = await first; !next.done; next = await iterator.next()) {
        const change = next.value;
        out.push(change.type === 'put' ? { type: 'set', route: toRouterRoute(change.route) } : { type: 'remove', id: change.id });
      }
      out.end();
    })().catch((err: unknown) => out.end(abort.signal.aborted ? undefined : err));
    return out;
  }
}
