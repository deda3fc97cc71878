import { randomBytes } from 'node:crypto';
import { createServer as createHttpServer, type Server } from 'node:http';
import type { Http2SecureServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { CloseGuard, settlesWithin, sleep, type Closable } from '../common/lifecycle.js';
import { silentLogger, type Logger } from '../common/logger.js';
import type { Discovery } from '../discovery/discovery.js';
import { BackendRegistry } from './backends.js';
import { selfSignedCertificate, type CertificatePair } from './certificate.js';
import { RouterErrorCodes, RouterInputError, RouterListenError } from './errors.js';
import { createRequestHandler, createUpgradeHandler, InFlight, type ProxyContext } from './http-proxy.js';
import type { RouteSource } from './route-source.js';
import { HttpsListener } from './https-listener.js';
import { OutlierDetector } from './outlier.js';
import { HttpRouteTable } from './route-table.js';
import { StickySigner } from './sticky.js';
import { ROUTER_DEFAULTS, type Route } from './types.js';
import { RouteApplier, secureContext } from './route-applier.js';

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
  /**
   * The HTTPS listener (HTTP/1.1, and HTTP/2 by ALPN); each route's `tls` certificate is chosen by
   * SNI, and every other name gets {@link defaultCertificate}.
   */
  https?: ListenAddress;
  /**
   * Certificate served over HTTPS for names without a route certificate (and to clients that send
   * no SNI). Default: a self-signed one for `localhost`, made at start by `openssl`
   * ({@link selfSignedCertificate}); a cluster keeps one made once ({@link clusterCertificate}).
   */
  defaultCertificate?: CertificatePair;
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
  const connectTimeoutMs = timeoutMs(options.connectTimeoutMs, ROUTER_DEFAULTS.connectTimeoutMs, 'connectTimeoutMs');
  const config = Object.freeze({
    drainTimeoutMs: positiveInt(options.drainTimeoutMs, ROUTER_DEFAULTS.drainTimeoutMs, 'drainTimeoutMs'),
    keepAliveTimeoutMs: positiveInt(options.keepAliveTimeoutMs, ROUTER_DEFAULTS.keepAliveTimeoutMs, 'keepAliveTimeoutMs'),
    maxIdleSocketsPerBackend: positiveInt(options.maxIdleSocketsPerBackend, ROUTER_DEFAULTS.maxIdleSocketsPerBackend, 'maxIdleSocketsPerBackend'),
    ejectAfterFailures: Math.max(1, positiveInt(options.ejectAfterFailures, ROUTER_DEFAULTS.ejectAfterFailures, 'ejectAfterFailures')),
    baseEjectionMs: timeoutMs(options.baseEjectionMs, ROUTER_DEFAULTS.baseEjectionMs, 'baseEjectionMs'),
    maxEjectionMs: timeoutMs(options.maxEjectionMs, ROUTER_DEFAULTS.maxEjectionMs, 'maxEjectionMs'),
    connectTimeoutMs,
    maxAttempts: Math.max(1, positiveInt(options.maxAttempts, ROUTER_DEFAULTS.maxAttempts, 'maxAttempts')),
    rewatchDelayMs: positiveInt(options.rewatchDelayMs, ROUTER_DEFAULTS.rewatchDelayMs, 'rewatchDelayMs'),
    backendsReadyTimeoutMs: positiveInt(options.backendsReadyTimeoutMs, ROUTER_DEFAULTS.backendsReadyTimeoutMs, 'backendsReadyTimeoutMs'),
    stickyCookie: options.stickyCookie ?? ROUTER_DEFAULTS.stickyCookie,
    timeouts: Object.freeze({
      connectMs: connectTimeoutMs,
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
  let httpsPort = options.https?.port ?? 0;
  const ctx: ProxyContext = { table, backends, signer: new StickySigner(key), logger, inFlight, health, httpsPort: () => (options.https ? httpsPort : undefined), ...config };
  const applier = new RouteApplier({ table, backends, health, logger, ...config });
  const defaultPair = options.https ? (options.defaultCertificate ?? (await selfSignedCertificate(['localhost', '127.0.0.1']))) : undefined;
  const defaultCertificate = defaultPair ? secureContext(defaultPair) : undefined;

  const httpServer = createHttpServer({ keepAliveTimeout: config.keepAliveTimeoutMs });
  let httpPort = options.http.port;
  httpServer.on('request', createRequestHandler(ctx, 'http', () => httpPort));
  httpServer.on('upgrade', createUpgradeHandler(ctx, 'http', () => httpPort));
  const https =
    options.https && defaultPair && defaultCertificate
      ? new HttpsListener({
          defaultCertificate: defaultPair,
          defaultContext: defaultCertificate,
          certificate: (name) => applier.certificate(name),
          keepAliveTimeoutMs: config.keepAliveTimeoutMs,
          logger,
          onRequest: createRequestHandler(ctx, 'https', () => httpsPort),
          onUpgrade: createUpgradeHandler(ctx, 'https', () => httpsPort),
        })
      : undefined;
  const httpsServer = https?.server;
  // Unparseable requests get a 400 (when the socket can still take it), never a hang.
  for (const server of [httpServer, httpsServer]) {
    server?.on('clientError', (_err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: 29\r\nconnection: close\r\n\r\n400 Bad Request: bad request\n');
      else socket.destroy();
    });
  }

  const stopWatch = new AbortController();
  let firstResolve!: () => void;
  const first = new Promise<void>((resolve) => (firstResolve = resolve));
  const follow = async () => {
    while (!stopWatch.signal.aborted) {
      try {
        for await (const event of options.routes.watch({ signal: stopWatch.signal })) {
          await applier.apply(event);
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

  const listen = (server: Server | Http2SecureServer, addr: ListenAddress, what: string) =>
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
    httpServer.closeIdleConnections();
    https?.closeIdle();
    await applier.stopTcp();
    const tcpIdle = async () => {
      while (applier.tcpOpen()) await sleep(50);
    };
    await settlesWithin(Promise.all([inFlight.whenIdle(), tcpIdle()]), config.drainTimeoutMs);
    httpServer.closeAllConnections();
    https?.closeAll();
    for (const socket of inFlight.sockets) socket.destroy();
    await Promise.all(stopped);
    await applier.close();
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
    routes: () => [...applier.current.values()],
    inFlight: () => inFlight.count + inFlight.sockets.size,
    settled: () => applier.settled(),
    close: () => guard.close(shutdown),
    [Symbol.asyncDispose]() {
      return guard.close(shutdown);
    },
  };
}
