import { randomBytes } from 'node:crypto';
import type { Discovery } from '../discovery/discovery.js';
import type { Logger } from '../common/logger.js';
import type { AccessLogOptions } from './access-log.js';
import type { CertificatePair } from './certificate.js';
import { RouterErrorCodes, RouterInputError } from './errors.js';
import type { RouteSource } from './route-source.js';
import { ROUTER_DEFAULTS } from './types.js';

export interface ListenAddress {
  /** Address to bind, e.g. `127.0.0.1` or `0.0.0.0`. */
  host: string;
  /** Port to bind; 0 picks a free one (read it back from the handle). */
  port: number;
}

/** Settings of the `haproxy` engine. */
export interface HaproxyOptions {
  /** The haproxy binary. Default `haproxy` (on PATH; Debian's package, ≥ 2.6). */
  bin?: string;
  /** Routes each pool of pre-declared backends holds (one pool for sticky routes, one for the others). Default 128. */
  slots?: number;
  /** HAProxy threads. Default 1. */
  threads?: number;
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
   * The data plane: `node` (default) proxies in this process; `haproxy` starts HAProxy as a child
   * process and drives it live through its Runtime API (docs/router.md#engines).
   */
  engine?: 'node' | 'haproxy';
  /** Settings of the `haproxy` engine. */
  haproxy?: HaproxyOptions;
  /**
   * Processes of the node engine sharing the listeners (node:cluster), for machines with more cores
   * than one process uses. Default 1 (in this process). The haproxy engine takes `haproxy.threads`.
   * With `workers`, each worker writes its own access log lines (to its stdout, or sent to this
   * process's `accessLog.write`), and `metrics` adds up every worker's counts when scraped.
   */
  workers?: number;
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
  /**
   * An admin listener serving Prometheus metrics at `GET /metrics`, off unless given. The node engine
   * counts requests by route and status, latency, backend failures and ejections; the haproxy engine
   * serves HAProxy's own exporter (per slot backend and server).
   */
  metrics?: ListenAddress;
  /**
   * Expect a PROXY protocol header (v1 or v2, as HAProxy's `accept-proxy`) at the start of every
   * connection to the HTTP(S) listeners and TCP route ports, from a load balancer in front; the
   * client it names is the one in `X-Forwarded-For`/`Forwarded`. A connection without one is closed.
   * Default false.
   */
  proxyProtocol?: boolean;
  /** One line per request (JSON or combined), off unless given: `{ format?: 'json' | 'combined', write?: (line) => void }` (default: stdout). */
  accessLog?: AccessLogOptions;
  /** Longest wait for in-flight requests on close, in ms. Default {@link ROUTER_DEFAULTS}.drainTimeoutMs. */
  drainTimeoutMs?: number;
  /** Idle client keep-alive timeout, in ms. Default {@link ROUTER_DEFAULTS}.keepAliveTimeoutMs. */
  keepAliveTimeoutMs?: number;
  /** Backends tried per request. Default {@link ROUTER_DEFAULTS}.maxAttempts. */
  maxAttempts?: number;
  /**
   * Time a client has to send a request head, in ms (HAProxy's `timeout http-request`): then `408
   * Request Timeout` and the connection is closed (a slowloris client is not held). Over HTTPS it
   * also bounds the TLS handshake. Default {@link ROUTER_DEFAULTS}.requestHeadersTimeoutMs (10 s).
   */
  requestHeadersTimeoutMs?: number;
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

/** The router's settings once checked, with every default filled in. */
export type RouterConfig = ReturnType<typeof routerConfig>;

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

/** Check the router's options and fill in the defaults; throws {@link RouterInputError} naming the field. */
export function routerConfig(options: RouterOptions) {
  if (!options.discovery || !options.routes) throw new RouterInputError(RouterErrorCodes.INVALID_OPTIONS, 'discovery and routes are required', { field: options.discovery ? 'routes' : 'discovery' });
  checkListen(options.http, 'http');
  if (!options.http) throw new RouterInputError(RouterErrorCodes.INVALID_OPTIONS, 'http { host, port } is required', { field: 'http' });
  checkListen(options.https, 'https');
  const engine = options.engine ?? 'node';
  if (engine !== 'node' && engine !== 'haproxy') throw new RouterInputError(RouterErrorCodes.INVALID_OPTIONS, `invalid engine ${JSON.stringify(engine)}: expected 'node' or 'haproxy'`, { field: 'engine' });
  const stickyKey = options.stickyKey === undefined ? randomBytes(32) : Buffer.from(options.stickyKey);
  if (stickyKey.length < 16) throw new RouterInputError(RouterErrorCodes.INVALID_OPTIONS, 'stickyKey must be at least 16 bytes', { field: 'stickyKey' });
  const stickyCookie = options.stickyCookie ?? ROUTER_DEFAULTS.stickyCookie;
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(stickyCookie)) throw new RouterInputError(RouterErrorCodes.INVALID_OPTIONS, 'stickyCookie must be 1-64 letters, digits, _ or -', { field: 'stickyCookie' });
  const connectTimeoutMs = timeoutMs(options.connectTimeoutMs, ROUTER_DEFAULTS.connectTimeoutMs, 'connectTimeoutMs');
  const h = options.haproxy ?? {};
  const logFormat = options.accessLog?.format ?? 'json';
  if (logFormat !== 'json' && logFormat !== 'combined') throw new RouterInputError(RouterErrorCodes.INVALID_OPTIONS, `invalid accessLog.format ${JSON.stringify(logFormat)}: expected 'json' or 'combined'`, { field: 'accessLog.format' });
  checkListen(options.metrics, 'metrics');
  // node:tls reads a socket's handle directly, past the bytes put back after the header, and a stream in between loses the client's address.
  if (options.proxyProtocol && options.https && engine === 'node') throw new RouterInputError(RouterErrorCodes.INVALID_OPTIONS, "proxyProtocol with an https listener needs engine 'haproxy'", { field: 'proxyProtocol' });
  const workers = positiveInt(options.workers, 1, 'workers');
  if (workers < 1) throw new RouterInputError(RouterErrorCodes.INVALID_OPTIONS, 'workers must be at least 1', { field: 'workers' });
  if (engine === 'haproxy' && options.workers !== undefined) throw new RouterInputError(RouterErrorCodes.INVALID_OPTIONS, "workers is an option of the node engine; the haproxy engine takes haproxy.threads", { field: 'workers' });
  return Object.freeze({
    engine,
    workers,
    accessLog: options.accessLog,
    proxyProtocol: options.proxyProtocol === true,
    metrics: options.metrics,
    haproxy: Object.freeze({
      bin: h.bin ?? 'haproxy',
      slots: Math.max(1, positiveInt(h.slots, 128, 'haproxy.slots')),
      threads: Math.max(1, positiveInt(h.threads, 1, 'haproxy.threads')),
    }),
    stickyKey,
    stickyCookie,
    drainTimeoutMs: positiveInt(options.drainTimeoutMs, ROUTER_DEFAULTS.drainTimeoutMs, 'drainTimeoutMs'),
    keepAliveTimeoutMs: positiveInt(options.keepAliveTimeoutMs, ROUTER_DEFAULTS.keepAliveTimeoutMs, 'keepAliveTimeoutMs'),
    ejectAfterFailures: Math.max(1, positiveInt(options.ejectAfterFailures, ROUTER_DEFAULTS.ejectAfterFailures, 'ejectAfterFailures')),
    baseEjectionMs: timeoutMs(options.baseEjectionMs, ROUTER_DEFAULTS.baseEjectionMs, 'baseEjectionMs'),
    maxEjectionMs: timeoutMs(options.maxEjectionMs, ROUTER_DEFAULTS.maxEjectionMs, 'maxEjectionMs'),
    connectTimeoutMs,
    requestHeadersTimeoutMs: timeoutMs(options.requestHeadersTimeoutMs, ROUTER_DEFAULTS.requestHeadersTimeoutMs, 'requestHeadersTimeoutMs'),
    maxAttempts: Math.max(1, positiveInt(options.maxAttempts, ROUTER_DEFAULTS.maxAttempts, 'maxAttempts')),
    rewatchDelayMs: positiveInt(options.rewatchDelayMs, ROUTER_DEFAULTS.rewatchDelayMs, 'rewatchDelayMs'),
    backendsReadyTimeoutMs: positiveInt(options.backendsReadyTimeoutMs, ROUTER_DEFAULTS.backendsReadyTimeoutMs, 'backendsReadyTimeoutMs'),
    timeouts: Object.freeze({
      connectMs: connectTimeoutMs,
      responseHeadersMs: timeoutMs(options.responseHeadersTimeoutMs, ROUTER_DEFAULTS.responseHeadersTimeoutMs, 'responseHeadersTimeoutMs'),
      idleMs: timeoutMs(options.idleTimeoutMs, ROUTER_DEFAULTS.idleTimeoutMs, 'idleTimeoutMs'),
      websocketIdleMs: timeoutMs(options.websocketIdleTimeoutMs, ROUTER_DEFAULTS.websocketIdleTimeoutMs, 'websocketIdleTimeoutMs'),
    }),
    tcpHost: options.tcp?.host ?? options.http.host,
  });
}
