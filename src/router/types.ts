/** Wire and domain types of the router (Flynn's strowger). Imports nothing else from the project. */

/** Route HTTP requests for `domain` (and an optional path prefix) to the live instances of `service`. */
export interface HttpRoute {
  /** Unique id of the route, e.g. `http-myapp-1`. */
  id: string;
  type: 'http';
  /** Exact host (`myapp.example.com`) or a wildcard covering its subdomains (`*.example.com`). */
  domain: string;
  /** Path prefix, matched on whole segments (`/api` matches `/api` and `/api/x`, not `/apix`). Default `/`. */
  path?: string;
  /** Discovery service whose live instances serve this route, e.g. `myapp-web`. */
  service: string;
  /** Pin each client to one backend with a signed cookie while that backend lives. Default false. */
  sticky?: boolean;
  /** PEM certificate (chain) and key served for this domain over HTTPS, chosen by SNI. */
  tls?: { cert: string; key: string };
  /** This route's timeouts, overriding the router's ({@link ROUTER_DEFAULTS}). */
  timeouts?: RouteTimeouts;
  /** Answer plain-HTTP requests with a `308` to the same URL over HTTPS (when the router has an HTTPS listener). Default false. */
  redirectHttps?: boolean;
  /** Active health checks of the service's backends, on top of passive ejection. */
  healthCheck?: HealthCheck;
  /**
   * An ACME HTTP-01 challenge in progress for `domain`: the router answers
   * `GET /.well-known/acme-challenge/<token>` for the domain itself with `keyAuthorization`.
   */
  acmeChallenge?: AcmeChallenge;
}

/** An HTTP-01 challenge token and the key authorization to answer it with (RFC 8555 8.3). */
export interface AcmeChallenge {
  token: string;
  keyAuthorization: string;
}

/**
 * `GET <path>` with `Host: <domain>` to each backend every `intervalMs`: an answer other than
 * 2xx/3xx within `timeoutMs` ejects the backend (as HAProxy's `option httpchk`), and its probes use
 * the same request until one passes.
 */
export interface HealthCheck {
  path: string;
  /** Default 10 000 ms. */
  intervalMs?: number;
  /** Default 2 000 ms. */
  timeoutMs?: number;
}

/** Timeouts of one proxied request, all in ms (whole numbers ≥ 1). */
export interface RouteTimeouts {
  /** Longest wait for the backend's TCP connection; then the next backend is tried, else 504. */
  connectMs?: number;
  /** Longest wait for the response head once the request (and its body) was sent; then 504. */
  responseHeadersMs?: number;
  /** Longest silence on a request or response body being streamed; then 504, or the connection is cut once the answer started. */
  idleMs?: number;
  /** Longest silence on an upgraded (WebSocket) connection, either direction; then both sides are closed. */
  websocketIdleMs?: number;
}

/** Route every TCP connection arriving on `port` to the live instances of `service`. */
export interface TcpRoute {
  id: string;
  type: 'tcp';
  /** Port the router listens on (1-65535) on its TCP host. */
  port: number;
  service: string;
}

export type Route = HttpRoute | TcpRoute;

/**
 * What a route watch yields: one `current` with the full table first, then changes. Each event is
 * plain JSON so that it can travel as a Server-Sent Event (`event: <type>`, `data: <json>`); a
 * `current` after a reconnect replaces the whole table.
 */
export type RouteEvent =
  | { type: 'current'; routes: Route[] }
  | { type: 'set'; route: Route }
  | { type: 'remove'; id: string };

export const ROUTER_DEFAULTS = Object.freeze({
  /** Longest time `close()` waits for in-flight requests before cutting them. */
  drainTimeoutMs: 10_000,
  /** Idle time after which a client keep-alive connection is closed. */
  keepAliveTimeoutMs: 65_000,
  /** Time a client has to send a whole request head (from its first byte; HAProxy's `timeout http-request`); then 408. */
  requestHeadersTimeoutMs: 10_000,
  /** Backends tried for one request before answering 503/502/504. */
  maxAttempts: 3,
  /** Connect timeout of a backend connection, ms ({@link RouteTimeouts}.connectMs). */
  connectTimeoutMs: 5_000,
  /** Wait for the response head after the request was sent, ms ({@link RouteTimeouts}.responseHeadersMs). */
  responseHeadersTimeoutMs: 60_000,
  /** Idle time allowed in a streamed request or response body, ms ({@link RouteTimeouts}.idleMs). */
  idleTimeoutMs: 60_000,
  /** Idle time allowed on an upgraded (WebSocket) connection, ms ({@link RouteTimeouts}.websocketIdleMs). */
  websocketIdleTimeoutMs: 600_000,
  /** Consecutive connection failures (reset, refused) after which a backend is ejected; a timeout or refusal ejects at once. */
  ejectAfterFailures: 3,
  /** First ejection time, ms; each ejection within `maxEjectionMs` of the last doubles it. */
  baseEjectionMs: 1_000,
  /** Longest ejection time, ms. */
  maxEjectionMs: 30_000,
  /** Wait between attempts to re-open a failed route or discovery watch. */
  rewatchDelayMs: 1_000,
  /** Longest a request waits for a service's first backend list from discovery. */
  backendsReadyTimeoutMs: 5_000,
  /** Name of the sticky-session cookie (Flynn uses `_backend`). */
  stickyCookie: '_backend',
});
