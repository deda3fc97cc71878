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
  /** Idle keep-alive connections kept per backend. */
  maxIdleSocketsPerBackend: 256,
  /** Time a backend that refused a connection is avoided by the balancer. */
  refusedBackoffMs: 1_000,
  /** Backends tried for one request before answering 503/502. */
  maxAttempts: 3,
  /** Wait between attempts to re-open a failed route or discovery watch. */
  rewatchDelayMs: 1_000,
  /** Longest a request waits for a service's first backend list from discovery. */
  backendsReadyTimeoutMs: 5_000,
  /** Name of the sticky-session cookie (Flynn uses `_backend`). */
  stickyCookie: '_backend',
});
