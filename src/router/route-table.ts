import type { HttpRoute } from './types.js';

/**
 * HTTP routes indexed by host: exact domains first, then the nearest wildcard
 * (`a.b.example.com` tries `*.b.example.com`, then `*.example.com`, ...); within a domain the
 * longest path prefix that matches on whole segments wins.
 */
export class HttpRouteTable {
  /** domain (exact, or `*.suffix`) → routes sorted by path length, longest first. */
  private readonly byDomain = new Map<string, HttpRoute[]>();
  private readonly byId = new Map<string, HttpRoute>();
  /** Called after each change (the haproxy engine follows the table). */
  readonly listeners = new Set<() => void>();

  get size(): number {
    return this.byId.size;
  }

  get(id: string): HttpRoute | undefined {
    return this.byId.get(id);
  }

  routes(): HttpRoute[] {
    return [...this.byId.values()];
  }

  set(route: HttpRoute): void {
    this.remove(route.id);
    this.byId.set(route.id, route);
    const list = (this.byDomain.get(route.domain) ?? []).filter((r) => (r.path ?? '/') !== (route.path ?? '/'));
    list.push(route);
    list.sort((a, b) => (b.path ?? '/').length - (a.path ?? '/').length);
    this.byDomain.set(route.domain, list);
    this.changed();
  }

  remove(id: string): HttpRoute | undefined {
    const route = this.byId.get(id);
    if (!route) return undefined;
    this.byId.delete(id);
    const list = (this.byDomain.get(route.domain) ?? []).filter((r) => r.id !== id);
    if (list.length > 0) this.byDomain.set(route.domain, list);
    else this.byDomain.delete(route.domain);
    this.changed();
    return route;
  }

  clear(): void {
    this.byDomain.clear();
    this.byId.clear();
    this.changed();
  }

  private changed(): void {
    for (const listener of this.listeners) listener();
  }

  /** The route for a request, or undefined. `host` may carry a port; `url` may carry a query. */
  match(host: string, url: string): HttpRoute | undefined {
    const name = hostname(host);
    const exact = this.byDomain.get(name);
    if (exact) {
      const hit = matchPath(exact, url);
      if (hit) return hit;
    }
    let dot = name.indexOf('.');
    while (dot !== -1) {
      const list = this.byDomain.get('*' + name.slice(dot));
      if (list) {
        const hit = matchPath(list, url);
        if (hit) return hit;
      }
      dot = name.indexOf('.', dot + 1);
    }
    return undefined;
  }
}

/** Lower-cased host without port (handles `[v6]:port`). */
export function hostname(host: string): string {
  let end = host.length;
  if (host.charCodeAt(0) === 91 /* [ */) end = host.indexOf(']') + 1 || end;
  else {
    const colon = host.lastIndexOf(':');
    if (colon !== -1) end = colon;
  }
  const name = host.slice(0, end);
  return name.endsWith('.') ? name.slice(0, -1).toLowerCase() : name.toLowerCase();
}

function matchPath(routes: HttpRoute[], url: string): HttpRoute | undefined {
  for (const route of routes) {
    const prefix = route.path ?? '/';
    if (prefix === '/') return route;
    if (!url.startsWith(prefix)) continue;
    const next = url.charCodeAt(prefix.length);
    // end of path, a segment boundary, or the query string
    if (Number.isNaN(next) || next === 47 /* / */ || next === 63 /* ? */) return route;
  }
  return undefined;
}
