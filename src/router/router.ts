import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import { CloseGuard, settlesWithin, sleep, type Closable } from '../common/lifecycle.js';
import { silentLogger, type Logger } from '../common/logger.js';
import type { Discovery } from '../discovery/discovery.js';
import { BackendRegistry } from './backends.js';
import { RouterErrorCodes, RouterInputError, RouterListenError } from './errors.js';
import { createRequestHandler, createUpgradeHandler, InFlight, type ProxyContext } from './http-proxy.js';
import type { RouteSource } from './route-source.js';
import { OutlierDetector } from './outlier.js';
import { HttpRouteTable } from './route-table.js';
import { StickySigner } from './sticky.js';
import { TcpListener } from './tcp-proxy.js';
import { ROUTER_DEFAULTS, type Route, type RouteEvent } from './types.js';
import { routeKey, validateRoute } from './validate.js';

export interface ListenAddress {
  /** Address to bind, e.g. `127.0.0.1` or `0.0.0.0`. */
  host: string;
  /** Port to bind; 0 picks a free one (read it back from the handle). */
  port: number;
}

export interface RouterOptions {
  /** Where the backends of each routed service are found (live instances, watched). */
  discovery: Discovery;
  /** Where the routes come from (the controller in production, {@link MemoryRouteSource} in tests). */
  routes: RouteSource;
  /** The plain HTTP listener. */
  http: ListenAddress;
  /** The HTTPS listener; certificates come from the routes' `tls` and are chosen by SNI. */
  https?: ListenAddress;
  /** Address TCP route ports bind. Default: the HTTP host. */
  tcp?: { host: string };
  /**
   * Key of the sticky-session cookie HMAC (≥ 16 bytes). Routers that share clients must share it.
   * Default: random per process (cookies then do not survive a restart).
   */
  stickyKey?: string | Buffer;
  /** Default silent. */
  logger?: Logger;
  /** Longest wait for in-flight requests on close, in ms. Default {@link ROUTER_DEFAULTS}.drainTimeoutMs. */
  drainTimeoutMs?: number;
  /** Idle client keep-alive timeout, in ms. Default {@link ROUTER_DEFAULTS}.keepAliveTimeoutMs. */
  keepAliveTimeoutMs?: number;
  /** Idle pooled connections per backend. Default {@link ROUTER_DEFAULTS}.maxIdleSocketsPerBackend. */
  maxIdleSocketsPerBackend?: number;
  /** Backends tried per request. Default {@link ROUTER_DEFAULTS}.maxAttempts. */
  maxAttempts?: number;
  /** Backend connect timeout, ms. Default {@link ROUTER_DEFAULTS}.connectTimeoutMs (5 s). Routes may override it (`timeouts.connectMs`). */
  connectTimeoutMs?: number;
  /** Wait for a response head once the request was sent, ms. Default {@link ROUTER_DEFAULTS}.responseHeadersTimeoutMs (60 s). */
  responseHeadersTimeoutMs?: number;
  /** Silence allowed in a streamed body, ms. Default {@link ROUTER_DEFAULTS}.idleTimeoutMs (60 s). */
  idleTimeoutMs?: number;
  /** Silence allowed on an upgraded connection, ms. Default {@link ROUTER_DEFAULTS}.websocketIdleTimeoutMs (10 min). */
  websocketIdleTimeoutMs?: number;
  /** Failures in a row that eject a backend. Default {@link ROUTER_DEFAULTS}.ejectAfterFailures (3). */
  ejectAfterFailures?: number;
  /** First ejection, ms (doubles per ejection). Default {@link ROUTER_DEFAULTS}.baseEjectionMs (1 s). */
  baseEjectionMs?: number;
  /** Longest ejection, ms. Default {@link ROUTER_DEFAULTS}.maxEjectionMs (30 s). */
  maxEjectionMs?: number;
  /** Wait before re-opening a lost route or discovery watch, in ms. Default {@link ROUTER_DEFAULTS}.rewatchDelayMs. */
  rewatchDelayMs?: number;
  /** Longest wait for a new service's first backend list, in ms. Default {@link ROUTER_DEFAULTS}.backendsReadyTimeoutMs. */
  backendsReadyTimeoutMs?: number;
  /** Sticky cookie name. Default {@link ROUTER_DEFAULTS}.stickyCookie. */
  stickyCookie?: string;
}

export interface BoundAddress {
  host: string;
  port: number;
  /** e.g. `http://127.0.0.1:8080`. */
  url: string;
}

/** A running router. */
export interface Router extends Closable {
  readonly http: BoundAddress;
  readonly https: BoundAddress | undefined;
  /** The routes in force, as last received from the route source. */
  routes(): Route[];
  /** Requests (and upgraded connections) being served right now. */
  inFlight(): number;
  /** Resolves once the router applied every route event received so far (handy in tests). */
  settled(): Promise<void>;
}

function positiveInt(value: number | undefined, fallback: number, field: string): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < 0) throw new RouterInputError(RouterErrorCodes.INVALID_OPTIONS, `invalid ${field} ${JSON.stringify(value)}: expected a whole number ≥ 0`, { field });
  return v;
}

function timeoutMs(value: number | undefined, fallback: number, field: string): number {
  const v = positiveInt(value, fallback, field);
  if (v < 1) throw new RouterInputError(RouterErrorCodes.INVALID_OPTIONS, `invalid ${field} 0: expected a whole number of ms ≥ 1`, { field });
  return v;
}

function checkListen(addr: ListenAddress | undefined, field: string): void {
  if (addr === undefined) return;
  if (typeof addr !== 'object' || typeof addr.host !== 'string' || addr.host === '' || !Number.isInteger(addr.port) || addr.port < 0 || addr.port > 65535) {
    throw new RouterInputError(RouterErrorCodes.INVALID_OPTIONS, `invalid ${field}: expected { host, port } with port 0-65535`, { field });
  }
}

/** Start the router: bind its listeners, follow routes and backends, and serve until `close()`. */
export async function startRouter(options: RouterOptions): Promise<Router> {
  if (!options.discovery || !options.routes) throw new RouterInputError(RouterErrorCodes.INVALID_OPTIONS, 'discovery and routes are required', { field: options.discovery ? 'routes' : 'discovery' });
  checkListen(options.http, 'http');
  if (!options.http) throw new RouterInputError(RouterErrorCodes.INVALID_OPTIONS, 'http { host, port } is required', { field: 'http' });
  checkListen(options.https, 'https');
  const key = options.stickyKey === undefined ? randomBytes(32) : Buffer.from(options.stickyKey);
  if (key.length < 16) throw new RouterInputError(RouterErrorCodes.INVALID_OPTIONS, 'stickyKey must be at least 16 bytes', { field: 'stickyKey' });
  const config = Object.freeze({
    drainTimeoutMs: positiveInt(options.drainTimeoutMs, ROUTER_DEFAULTS.drainTimeoutMs, 'drainTimeoutMs'),
    keepAliveTimeoutMs: positiveInt(options.keepAliveTimeoutMs, ROUTER_DEFAULTS.keepAliveTimeoutMs, 'keepAliveTimeoutMs'),
    maxIdleSocketsPerBackend: positiveInt(options.maxIdleSocketsPerBackend, ROUTER_DEFAULTS.maxIdleSocketsPerBackend, 'maxIdleSocketsPerBackend'),
    ejectAfterFailures: Math.max(1, positiveInt(options.ejectAfterFailures, ROUTER_DEFAULTS.ejectAfterFailures, 'ejectAfterFailures')),
    baseEjectionMs: positiveInt(options.baseEjectionMs, ROUTER_DEFAULTS.baseEjectionMs, 'baseEjectionMs'),
    maxEjectionMs: positiveInt(options.maxEjectionMs, ROUTER_DEFAULTS.maxEjectionMs, 'maxEjectionMs'),
    connectTimeoutMs: timeoutMs(options.connectTimeoutMs, ROUTER_DEFAULTS.connectTimeoutMs, 'connectTimeoutMs'),
    maxAttempts: Math.max(1, positiveInt(options.maxAttempts, ROUTER_DEFAULTS.maxAttempts, 'maxAttempts')),
    rewatchDelayMs: positiveInt(options.rewatchDelayMs, ROUTER_DEFAULTS.rewatchDelayMs, 'rewatchDelayMs'),
    backendsReadyTimeoutMs: positiveInt(options.backendsReadyTimeoutMs, ROUTER_DEFAULTS.backendsReadyTimeoutMs, 'backendsReadyTimeoutMs'),
    stickyCookie: options.stickyCookie ?? ROUTER_DEFAULTS.stickyCookie,
    timeouts: Object.freeze({
      connectMs: timeoutMs(options.connectTimeoutMs, ROUTER_DEFAULTS.connectTimeoutMs, 'connectTimeoutMs'),
      responseHeadersMs: timeoutMs(options.responseHeadersTimeoutMs, ROUTER_DEFAULTS.responseHeadersTimeoutMs, 'responseHeadersTimeoutMs'),
      idleMs: timeoutMs(options.idleTimeoutMs, ROUTER_DEFAULTS.idleTimeoutMs, 'idleTimeoutMs'),
      websocketIdleMs: timeoutMs(options.websocketIdleTimeoutMs, ROUTER_DEFAULTS.websocketIdleTimeoutMs, 'websocketIdleTimeoutMs'),
    }),
    tcpHost: options.tcp?.host ?? options.http.host,
  });
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(config.stickyCookie)) throw new RouterInputError(RouterErrorCodes.INVALID_OPTIONS, 'stickyCookie must be 1-64 letters, digits, _ or -', { field: 'stickyCookie' });

  const logger = (options.logger ?? silentLogger).child({ component: 'router' });
  const backends = new BackendRegistry({ discovery: options.discovery, logger, ...config });
  const table = new HttpRouteTable();
  const inFlight = new InFlight();
  const health = new OutlierDetector({ logger, ...config });
  const ctx: ProxyContext = { table, backends, signer: new StickySigner(key), logger, inFlight, health, ...config };
  const current = new Map<string, Route>();
  const byKey = new Map<string, string>();
  const tcp = new Map<string, TcpListener>();
  /** Listeners of removed or replaced TCP routes whose connections are still open. */
  const retired = new Set<TcpListener>();
  const retire = async (listener: TcpListener | undefined) => {
    if (!listener) return;
    await listener.stop();
    if (listener.open > 0) retired.add(listener);
  };
  const tls = new Map<string, SecureContext>();

  const httpServer = createHttpServer({ keepAliveTimeout: config.keepAliveTimeoutMs });
  let httpPort = options.http.port;
  httpServer.on('request', createRequestHandler(ctx, 'http', () => httpPort));
  httpServer.on('upgrade', createUpgradeHandler(ctx, 'http', () => httpPort));
  let httpsServer: HttpsServer | undefined;
  let httpsPort = options.https?.port ?? 0;
  if (options.https) {
    httpsServer = createHttpsServer({ keepAliveTimeout: config.keepAliveTimeoutMs, SNICallback: (name, cb) => cb(null, sniContext(tls, name)) });
    httpsServer.on('request', createRequestHandler(ctx, 'https', () => httpsPort));
    httpsServer.on('upgrade', createUpgradeHandler(ctx, 'https', () => httpsPort));
    httpsServer.on('tlsClientError', (err) => logger.debug('tls handshake failed', { error: err.message }));
  }
  // Unparseable requests get a 400 (when the socket can still take it), never a hang.
  for (const server of [httpServer, httpsServer]) {
    server?.on('clientError', (_err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: 29\r\nconnection: close\r\n\r\n400 Bad Request: bad request\n');
      else socket.destroy();
    });
  }

  const rebuildTls = () => {
    tls.clear();
    for (const route of table.routes()) {
      if (!route.tls || tls.has(route.domain)) continue;
      try {
        tls.set(route.domain, createSecureContext({ cert: route.tls.cert, key: route.tls.key }));
      } catch (err) {
        logger.warn('route certificate rejected', { route: route.id, error: (err as Error).message });
      }
    }
  };

  const removeRoute = async (id: string): Promise<void> => {
    const old = current.get(id);
    if (!old) return;
    current.delete(id);
    byKey.delete(routeKey(old));
    if (old.type === 'http') {
      table.remove(id);
      if (old.tls) rebuildTls();
    } else {
      const listener = tcp.get(id);
      tcp.delete(id);
      await retire(listener);
    }
    backends.release(old.service);
  };

  const setRoute = async (input: Route): Promise<void> => {
    let route: Route;
    try {
      route = validateRoute(input);
    } catch (err) {
      logger.warn('ignoring invalid route', { id: (input as { id?: unknown }).id, error: (err as Error).message });
      return;
    }
    const old = current.get(route.id);
    if (old && JSON.stringify(old) === JSON.stringify(route)) return;
    const key = routeKey(route);
    const clash = byKey.get(key);
    if (clash !== undefined && clash !== route.id) {
      logger.warn('route replaces a conflicting one', { route: route.id, replaced: clash, key });
      await removeRoute(clash);
    }
    backends.acquire(route.service);
    if (route.type === 'http') {
      if (old?.type === 'tcp') await removeRoute(old.id);
      else if (old) byKey.delete(routeKey(old));
      table.set(route);
      if (route.tls || (old?.type === 'http' && old.tls)) rebuildTls();
    } else {
      if (old?.type === 'http') await removeRoute(old.id);
      else if (old) {
        byKey.delete(routeKey(old));
        const listener = tcp.get(old.id);
        tcp.delete(old.id);
        await retire(listener);
      }
      const listener = new TcpListener(route, config.tcpHost, backends, logger, config.maxAttempts, health, config.connectTimeoutMs);
      try {
        await listener.listen();
        tcp.set(route.id, listener);
      } catch (err) {
        logger.error('tcp route cannot listen', { route: route.id, error: (err as Error).message });
      }
    }
    if (old) backends.release(old.service);
    current.set(route.id, route);
    byKey.set(key, route.id);
  };

  let applying: Promise<void> = Promise.resolve();
  const apply = (event: RouteEvent): Promise<void> => {
    applying = applying.then(async () => {
      if (event.type === 'current') {
        const keep = new Set(event.routes.map((r) => r.id));
        for (const id of [...current.keys()]) if (!keep.has(id)) await removeRoute(id);
        for (const route of event.routes) await setRoute(route);
      } else if (event.type === 'set') await setRoute(event.route);
      else if (event.type === 'remove') await removeRoute(event.id);
    });
    return applying;
  };

  const stopWatch = new AbortController();
  let firstResolve!: () => void;
  const first = new Promise<void>((resolve) => (firstResolve = resolve));
  const follow = async () => {
    while (!stopWatch.signal.aborted) {
      try {
        for await (const event of options.routes.watch({ signal: stopWatch.signal })) {
          await apply(event);
          if (event.type === 'current') firstResolve();
        }
        if (stopWatch.signal.aborted) return;
        logger.warn('route watch ended; watching again');
      } catch (err) {
        if (stopWatch.signal.aborted) return;
        logger.warn('route watch failed; watching again', { error: (err as Error).message });
      }
      try {
        await sleep(config.rewatchDelayMs, stopWatch.signal);
      } catch {
        return;
      }
    }
  };

  const listen = (server: Server | HttpsServer, addr: ListenAddress, what: string) =>
    new Promise<number>((resolve, reject) => {
      const onError = (err: Error) => reject(new RouterListenError(`cannot listen for ${what} on ${addr.host}:${addr.port}: ${err.message}`, { cause: err }));
      server.once('error', onError);
      server.listen(addr.port, addr.host, () => {
        server.off('error', onError);
        resolve((server.address() as AddressInfo).port);
      });
    });

  const guard = new CloseGuard('router');
  const shutdown = async () => {
    stopWatch.abort();
    inFlight.draining = true;
    const stopped = [httpServer, httpsServer].filter((s) => s !== undefined).map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    for (const s of [httpServer, httpsServer]) s?.closeIdleConnections();
    await Promise.all([...tcp.values()].map((l) => l.stop()));
    const tcpIdle = async () => {
      while ([...tcp.values(), ...retired].some((l) => l.open > 0)) await sleep(50);
    };
    await settlesWithin(Promise.all([inFlight.whenIdle(), tcpIdle()]), config.drainTimeoutMs);
    for (const s of [httpServer, httpsServer]) s?.closeAllConnections();
    for (const socket of inFlight.sockets) socket.destroy();
    for (const l of [...tcp.values(), ...retired]) l.destroy();
    await Promise.all(stopped);
    await applying;
    backends.close();
    logger.info('router closed');
  };

  try {
    httpPort = await listen(httpServer, options.http, 'http');
    if (httpsServer && options.https) httpsPort = await listen(httpsServer, options.https, 'https');
  } catch (err) {
    await shutdown();
    throw err;
  }
  void follow();
  await first;
  // Give the services routed at start their first backend list, so the first requests find them.
  await settlesWithin(Promise.all(backends.services().map((s) => backends.get(s)?.ready)), config.backendsReadyTimeoutMs);
  logger.info('router listening', { http: `${options.http.host}:${httpPort}`, ...(httpsServer ? { https: `${options.https?.host}:${httpsPort}` } : {}) });

  const bound = (host: string, port: number, scheme: string): BoundAddress => ({ host, port, url: `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}` });
  return {
    http: bound(options.http.host, httpPort, 'http'),
    https: options.https ? bound(options.https.host, httpsPort, 'https') : undefined,
    routes: () => [...current.values()],
    inFlight: () => inFlight.count + inFlight.sockets.size,
    settled: async () => {
      // Let events already queued by the source reach the applier, then wait until it is quiet.
      let seen: Promise<void>;
      do {
        seen = applying;
        await new Promise((resolve) => setImmediate(resolve));
        await seen;
      } while (seen !== applying);
    },
    close: () => guard.close(shutdown),
    [Symbol.asyncDispose]() {
      return guard.close(shutdown);
    },
  };
}

/** The certificate for an SNI name: exact domain first, then the nearest wildcard. */
function sniContext(contexts: Map<string, SecureContext>, servername: string): SecureContext | undefined {
  const name = servername.toLowerCase();
  const exact = contexts.get(name);
  if (exact) return exact;
  let dot = name.indexOf('.');
  while (dot !== -1) {
    const hit = contexts.get('*' + name.slice(dot));
    if (hit) return hit;
    dot = name.indexOf('.', dot + 1);
  }
  return undefined;
}

