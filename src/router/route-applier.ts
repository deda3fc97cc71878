import type { SecureContext } from 'node:tls';
import type { Logger } from '../common/logger.js';
import type { BackendRegistry } from './backends.js';
import { ActiveHealthChecks } from './health-check.js';
import type { OutlierDetector } from './outlier.js';
import type { HttpRouteTable } from './route-table.js';
import { SniCertificates } from './sni.js';
import { TcpListener } from './tcp-proxy.js';
import type { HttpRoute, Route, RouteEvent, TcpRoute } from './types.js';
import { routeKey, validateRoute } from './validate.js';

export interface RouteApplierOptions {
  table: HttpRouteTable;
  backends: BackendRegistry;
  health: OutlierDetector;
  logger: Logger;
  tcpHost: string;
  maxAttempts: number;
  connectTimeoutMs: number;
  /** TCP route ports expect a PROXY protocol header. */
  proxyProtocol: boolean;
  /** The engine serves the TCP routes (haproxy, with {@link RouteApplier.tcpServedBy}): no listener here, even before it starts. */
  tcpInEngine: boolean;
}

/**
 * Applies route events, one at a time in order, to the router's state: the HTTP route table, the
 * TCP listeners, the backend pools' references and the certificates served by SNI.
 */
export class RouteApplier {
  readonly current = new Map<string, Route>();
  private readonly byKey = new Map<string, string>();
  private readonly tcp = new Map<string, TcpListener>();
  /** Listeners of removed or replaced TCP routes whose connections are still open. */
  private readonly retired = new Set<TcpListener>();
  private readonly certificates = new SniCertificates();
  private applying: Promise<void> = Promise.resolve();
  private readonly checks: ActiveHealthChecks;
  /** What else `settled()` waits for: a data plane outside this process catching up. */
  dataPlaneSettled: () => Promise<void> = () => Promise.resolve();
  /** Set by an engine that serves the TCP routes (haproxy): runs after each TCP route change. */
  private tcpPlane: (() => void) | undefined;

  constructor(private readonly o: RouteApplierOptions) {
    this.checks = new ActiveHealthChecks(o.backends, o.health);
  }

  /** Queue an event; resolves once it (and every event before it) is applied. */
  apply(event: RouteEvent): Promise<void> {
    this.applying = this.applying.then(async () => {
      if (event.type === 'current') {
        const keep = new Set(event.routes.map((r) => r.id));
        for (const id of [...this.current.keys()]) if (!keep.has(id)) await this.removeRoute(id);
        for (const route of event.routes) await this.setRoute(route);
      } else if (event.type === 'set') await this.setRoute(event.route);
      else if (event.type === 'remove') await this.removeRoute(event.id);
    });
    return this.applying;
  }

  /** Resolves once the router applied every route event received so far. */
  async settled(): Promise<void> {
    // Let events already queued by the source reach the applier, then wait until it is quiet.
    let seen: Promise<void>;
    do {
      seen = this.applying;
      await new Promise((resolve) => setImmediate(resolve));
      await seen;
    } while (seen !== this.applying);
    await this.dataPlaneSettled();
  }

  /** The certificate of a route for an SNI name: exact domain first, then the nearest wildcard. */
  certificate(servername: string): SecureContext | undefined {
    return this.certificates.lookup(servername);
  }

  /** Hand the TCP routes to a data plane: `changed` runs after each change, and it reads {@link tcpRoutes}. */
  tcpServedBy(changed: () => void): void {
    this.tcpPlane = changed;
  }

  /** The TCP routes in force. */
  tcpRoutes(): TcpRoute[] {
    return [...this.current.values()].filter((r): r is TcpRoute => r.type === 'tcp');
  }

  /** Resolves once no TCP connection is open on a current or retired listener. */
  async tcpIdle(): Promise<void> {
    const open = () => [...this.tcp.values(), ...this.retired].filter((l) => l.open > 0);
    for (let left = open(); left.length > 0; left = open()) await Promise.all(left.map((l) => l.whenIdle()));
  }

  /** Stop accepting TCP connections (open ones go on). */
  async stopTcp(): Promise<void> {
    await Promise.all([...this.tcp.values()].map((l) => l.stop()));
  }

  /** Cut every TCP connection left, once the queue of events is done. */
  async close(): Promise<void> {
    for (const l of [...this.tcp.values(), ...this.retired]) l.destroy();
    await this.applying;
    this.checks.close();
  }

  private rebuildCertificates(): void {
    this.certificates.rebuild(this.o.table.routes(), this.o.logger);
  }

  private async retire(listener: TcpListener | undefined): Promise<void> {
    if (!listener) return;
    await listener.stop();
    if (listener.open > 0) this.retired.add(listener);
  }

  private async removeRoute(id: string): Promise<void> {
    const old = this.current.get(id);
    if (!old) return;
    this.current.delete(id);
    this.byKey.delete(routeKey(old));
    if (old.type === 'http') {
      this.o.table.remove(id);
      this.checks.remove(id);
      if (old.tls) this.rebuildCertificates();
    } else {
      const listener = this.tcp.get(id);
      this.tcp.delete(id);
      await this.retire(listener);
      this.tcpPlane?.();
    }
    this.o.backends.release(old.service);
  }

  private async setRoute(input: Route): Promise<void> {
    const { logger, backends } = this.o;
    let route: Route;
    try {
      route = validateRoute(input);
    } catch (err) {
      logger.warn('ignoring invalid route', { id: (input as { id?: unknown }).id, error: (err as Error).message });
      return;
    }
    const old = this.current.get(route.id);
    if (old && JSON.stringify(old) === JSON.stringify(route)) return;
    const key = routeKey(route);
    const clash = this.byKey.get(key);
    if (clash !== undefined && clash !== route.id) {
      logger.warn('route replaces a conflicting one', { route: route.id, replaced: clash, key });
      await this.removeRoute(clash);
    }
    backends.acquire(route.service);
    if (route.type === 'http') await this.setHttp(route, old);
    else {
      if (old?.type === 'http') await this.removeRoute(old.id);
      else if (old) {
        this.byKey.delete(routeKey(old));
        const listener = this.tcp.get(old.id);
        this.tcp.delete(old.id);
        await this.retire(listener);
      }
      if (!this.o.tcpInEngine) await this.listenTcp(route);
    }
    if (old) backends.release(old.service);
    this.current.set(route.id, route);
    this.byKey.set(key, route.id);
    if (route.type === 'tcp') this.tcpPlane?.();
  }

  private async listenTcp(route: TcpRoute): Promise<void> {
    const { logger, backends } = this.o;
    const listener = new TcpListener(route, this.o.tcpHost, backends, logger, this.o.maxAttempts, this.o.health, this.o.connectTimeoutMs, this.o.proxyProtocol);
    try {
      await listener.listen();
      this.tcp.set(route.id, listener);
    } catch (err) {
      logger.error('tcp route cannot listen', { route: route.id, error: (err as Error).message });
    }
  }

  private async setHttp(route: HttpRoute, old: Route | undefined): Promise<void> {
    if (old?.type === 'tcp') await this.removeRoute(old.id);
    else if (old) this.byKey.delete(routeKey(old));
    this.o.table.set(route);
    this.checks.set(route);
    if (route.tls || (old?.type === 'http' && old.tls)) this.rebuildCertificates();
  }
}
