/** Wire types of routes: HTTP and TCP routes with their certificate, ACME and proxy options, the view API answers show, and the bodies that create and change them. Imports nothing else from the project. */

export interface HttpRouteTls {
  cert: string;
  key: string;
}

/**
 * A route's automatic certificate (ACME, HTTP-01), kept up to date by the platform's ACME client
 * (`flynn-ts/acme`): `pending` until the first certificate is issued (the cluster's default one is
 * served meanwhile), `issued` with its expiry, or `failed` with a one-line reason (a certificate
 * issued before keeps serving until it expires).
 */
export interface HttpRouteAcme {
  status: 'pending' | 'issued' | 'failed';
  /** ISO time the certificate in `tls` stops being valid (`issued`, and `failed` after an earlier issue). */
  expiresAt?: string;
  /** Why the last order failed, one line (`failed`). */
  error?: string;
  /** When the status last changed (ISO). */
  updatedAt: string;
  /** The HTTP-01 challenge being answered by the router, while an order is in progress. */
  challenge?: { token: string; keyAuthorization: string };
}

/** A route's own proxy timeouts, whole ms ≥ 1; an absent one is the router's default (docs/router.md). */
export interface HttpRouteTimeouts {
  /** Longest wait for a backend's TCP connection (then the next backend, else 504). */
  connectMs?: number;
  /** Longest wait for the response head once the request was sent (then 504). */
  responseHeadersMs?: number;
  /** Longest silence in a streamed request or response body. */
  idleMs?: number;
  /** Longest silence on an upgraded (WebSocket) connection. */
  websocketIdleMs?: number;
}

/** Active health check of a route's backends: `GET <path>` every `intervalMs`; not 2xx/3xx within `timeoutMs` ejects the backend. */
export interface HttpRouteHealthCheck {
  path: string;
  /** Default 10 000 ms. */
  intervalMs?: number;
  /** Default 2 000 ms. */
  timeoutMs?: number;
}

/** The router's per-route options an HTTP route may carry. */
export interface HttpRouteOptions {
  timeouts?: HttpRouteTimeouts;
  healthCheck?: HttpRouteHealthCheck;
  /** Plain-HTTP requests get a `308` to the same URL over HTTPS. */
  redirectHttps?: boolean;
}

export interface HttpRoute extends HttpRouteOptions {
  /** `http/<uuid>` */
  id: string;
  type: 'http';
  appId: string;
  domain: string;
  /** Path prefix, `/` by default. */
  path: string;
  /** Discovery service whose instances serve the route, e.g. `myapp-web`. */
  service: string;
  sticky: boolean;
  tls?: HttpRouteTls;
  /** Set when the route's certificate comes from ACME (`tls` then holds the issued one, once there is one). */
  acme?: HttpRouteAcme;
  createdAt: string;
}

export interface TcpRoute {
  /** `tcp/<uuid>` */
  id: string;
  type: 'tcp';
  appId: string;
  port: number;
  service: string;
  createdAt: string;
}

export type Route = HttpRoute | TcpRoute;

/** A route's certificate as API answers and events show it: the private key never leaves the controller, only that one is set. */
export interface HttpRouteTlsView {
  cert: string;
  keySet: true;
}

/** A route's ACME state as API answers show it (the challenge in progress is the router's business). */
export type HttpRouteAcmeView = Omit<HttpRouteAcme, 'challenge'>;

/** A route as API answers and events show it ({@link HttpRouteTlsView}). */
export type RouteView = (Omit<HttpRoute, 'tls' | 'acme'> & { tls?: HttpRouteTlsView; acme?: HttpRouteAcmeView }) | TcpRoute;

// ---- request bodies ----

export interface CreateHttpRouteInput extends HttpRouteOptions {
  type: 'http';
  domain: string;
  path?: string;
  service: string;
  sticky?: boolean;
  tls?: HttpRouteTls;
  /** Get the certificate automatically from the cluster's ACME CA (exact domains only; not with `tls`). */
  acme?: boolean;
}

/**
 * A change to an HTTP route (`PATCH /apps/:app/routes/http/:id`): each field given replaces the
 * route's; `null` removes an optional one. Domain and path are the route's identity: make a new
 * route to change them.
 */
export interface UpdateHttpRouteInput {
  service?: string;
  sticky?: boolean;
  tls?: HttpRouteTls | null;
  /** `true` asks for an automatic certificate (dropping an uploaded one); `false` stops it and drops the certificate it issued. */
  acme?: boolean;
  timeouts?: HttpRouteTimeouts | null;
  healthCheck?: HttpRouteHealthCheck | null;
  redirectHttps?: boolean;
}

export interface CreateTcpRouteInput {
  type: 'tcp';
  port: number;
  service: string;
}

export type CreateRouteInput = CreateHttpRouteInput | CreateTcpRouteInput;
