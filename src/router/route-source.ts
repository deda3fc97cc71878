import { AsyncQueue } from '../common/async-queue.js';
import { RouteConflictError } from './errors.js';
import type { Route, RouteEvent } from './types.js';
import { routeKey, validateRoute } from './validate.js';

export interface RouteWatchOptions {
  signal?: AbortSignal;
}

/**
 * Where the router gets its routes: the whole table, and a stream of changes. The controller's
 * route API implements it over HTTP + SSE in production; {@link MemoryRouteSource} in tests and
 * embedded setups. A watch yields `current` first, then `set`/`remove`; it ends when the consumer
 * stops or the signal aborts, and may throw if the source is lost (the router then watches again).
 */
export interface RouteSource {
  list(): Promise<Route[]>;
  watch(options?: RouteWatchOptions): AsyncIterable<RouteEvent>;
}

/** An in-memory route table: set and remove routes by hand, watchers see every change at once. */
export class MemoryRouteSource implements RouteSource {
  private readonly routes = new Map<string, Route>();
  private readonly watchers = new Set<AsyncQueue<RouteEvent>>();

  constructor(initial: Iterable<Route> = []) {
    for (const route of initial) this.set(route);
  }

  /** Add or replace a route (by id). Throws {@link RouteConflictError} if another route has its domain+path or port. */
  set(input: Route): Route {
    const route = validateRoute(input);
    const key = routeKey(route);
    for (const other of this.routes.values()) {
      if (other.id !== route.id && routeKey(other) === key) {
        throw new RouteConflictError(`route ${route.id} conflicts with route ${other.id} (${key})`, { detail: { id: other.id } });
      }
    }
    this.routes.set(route.id, route);
    this.emit({ type: 'set', route });
    return route;
  }

  /** Remove a route; returns false if there was none with that id. */
  remove(id: string): boolean {
    if (!this.routes.delete(id)) return false;
    this.emit({ type: 'remove', id });
    return true;
  }

  async list(): Promise<Route[]> {
    return [...this.routes.values()];
  }

  watch(options: RouteWatchOptions = {}): AsyncIterable<RouteEvent> {
    const { signal } = options;
    const onAbort = () => queue.end();
    const queue: AsyncQueue<RouteEvent> = new AsyncQueue(() => {
      this.watchers.delete(queue);
      signal?.removeEventListener('abort', onAbort);
    });
    queue.push({ type: 'current', routes: [...this.routes.values()] });
    if (signal?.aborted) queue.end();
    else {
      this.watchers.add(queue);
      signal?.addEventListener('abort', onAbort, { once: true });
    }
    return queue;
  }

  private emit(event: RouteEvent): void {
    for (const queue of this.watchers) queue.push(event);
  }
}
