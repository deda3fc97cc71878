/** The controller's store as the router's {@link RouteSource}: list + watch. */
import type { Store } from '../controller/store.js';
import type { Route as ControllerRoute } from '../controller/types.js';
import type { RouteSource, RouteWatchOptions } from '../router/route-source.js';
import type { Route, RouteEvent } from '../router/types.js';

/** A controller route as the router takes it. */
export function toRouterRoute(r: ControllerRoute): Route {
  if (r.type === 'tcp') return { id: r.id, type: 'tcp', port: r.port, service: r.service };
  const route: Route = { id: r.id, type: 'http', domain: r.domain, path: r.path, service: r.service, sticky: r.sticky };
  if (r.tls) route.tls = { cert: r.tls.cert, key: r.tls.key };
  return route;
}

export class StoreRouteSource implements RouteSource {
  constructor(private readonly store: Store) {}

  async list(): Promise<Route[]> {
    return (await this.store.listRoutes()).map(toRouterRoute);
  }

  watch(options: RouteWatchOptions = {}): AsyncIterable<RouteEvent> {
    // Subscribe before listing, so that no change between the two is lost.
    const changes = this.store.watchRoutes(options.signal ? { signal: options.signal } : {})[Symbol.asyncIterator]();
    const first = changes.next();
    first.catch(() => undefined); // seen when iterated; not unhandled if nobody iterates
    const list = () => this.list();
    return {
      async *[Symbol.asyncIterator]() {
        try {
          yield { type: 'current', routes: await list() };
          for (let next = await first; !next.done; next = await changes.next()) {
            const change = next.value;
            yield change.type === 'put' ? { type: 'set', route: toRouterRoute(change.route) } : { type: 'remove', id: change.id };
          }
        } finally {
          await changes.return?.();
        }
      },
    };
  }
}
