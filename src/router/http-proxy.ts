import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { settlesWithin } from '../common/lifecycle.js';
import type { Logger } from '../common/logger.js';
import type { Backend, ServicePool } from './backends.js';
import { BodylessExchange } from './bodyless.js';
import { forwardRequest, responseHeaders, type ForwardedRequest } from './headers.js';
import { hostname, type HttpRouteTable } from './route-table.js';
import { proxyUpgrade, proxyWithBody } from './node-exchange.js';
import type { OutlierDetector } from './outlier.js';
import { readCookie, type StickySigner } from './sticky.js';
import type { HttpRoute, RouteTimeouts } from './types.js';

/** Counts requests and upgraded connections being served, so that close can wait for them. */
export class InFlight {
  count = 0;
  draining = false;
  readonly sockets = new Set<Duplex>();
  private idle: (() => void) | undefined;

  start(): void {
    this.count++;
  }

  done(): void {
    if (--this.count === 0 && this.idle) this.idle();
  }

  /** Resolves when nothing is in flight. */
  whenIdle(): Promise<void> {
    if (this.count === 0) return Promise.resolve();
    return new Promise((resolve) => (this.idle = resolve));
  }
}

export interface ProxyContext {
  table: HttpRouteTable;
  /** The live backends of each routed service. */
  backends: { get(service: string): ServicePool | undefined };
  signer: StickySigner;
  logger: Logger;
  inFlight: InFlight;
  health: OutlierDetector;
  maxAttempts: number;
  backendsReadyTimeoutMs: number;
  stickyCookie: string;
  /** The HTTPS listener's port, when there is one (for `redirectHttps`). */
  httpsPort: () => number | undefined;
  /** The router's timeouts; a route's own override them field by field. */
  timeouts: Timeouts;
}

/** The timeouts in force for one request, in ms. */
export type Timeouts = Readonly<Required<RouteTimeouts>>;

function timeoutsOf(ctx: ProxyContext, route: HttpRoute): Timeouts {
  return route.timeouts ? { ...ctx.timeouts, ...route.timeouts } : ctx.timeouts;
}

/** A short plain-text answer from the router itself (404, 502, 503...). */
export function reply(res: ServerResponse, status: number, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = `${status} ${STATUS_CODES[status] ?? ''}: ${message}\n`;
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

/** The same short answer written raw on a socket that asked for an Upgrade. */
export function replyRaw(socket: Duplex, status: number, message: string): void {
  const body = `${status} ${STATUS_CODES[status] ?? ''}: ${message}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

/** Resolve the route's pool, waiting briefly for discovery's first answer on a new service. */
async function readyPool(ctx: ProxyContext, route: HttpRoute): Promise<ServicePool | undefined> {
  const pool = ctx.backends.get(route.service);
  if (!pool || pool.isReady) return pool;
  await settlesWithin(pool.ready, ctx.backendsReadyTimeoutMs);
  return pool;
}

/** The backend a request starts on: the sticky one if its cookie is valid and it lives, else the balancer's pick. */
function firstBackend(ctx: ProxyContext, route: HttpRoute, pool: ServicePool, cookie: string | undefined): { backend: Backend | undefined; pinned: boolean } {
  if (route.sticky) {
    const value = readCookie(cookie, ctx.stickyCookie);
    const addr = value === undefined ? undefined : ctx.signer.verify(route.id, value);
    const backend = addr === undefined ? undefined : pool.byAddr(addr);
    // An ejected backend loses its pinned clients as a dead one would (they get a new cookie).
    if (backend && !backend.ejected) return { backend, pinned: true };
  }
  return { backend: pool.pick(), pinned: false };
}

/** The `request` handler of the router's HTTP and HTTPS servers. */
export function createRequestHandler(ctx: ProxyContext, proto: 'http' | 'https', port: () => number): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const fwd = forwardRequest(req, proto, String(port()), false);
    const bad = badRequest(fwd);
    if (bad) return reply(res, 400, bad);
    const host = fwd.host as string;
    // `OPTIONS *` asks about the server, not a resource: the router answers it itself (as nginx does).
    if (req.url === '*') return optionsStar(req, res);
    const route = ctx.table.match(host, req.url ?? '/');
    if (!route) return reply(res, 404, `no route for ${hostname(host)}`);
    const httpsPort = ctx.httpsPort();
    if (route.redirectHttps && proto === 'http' && httpsPort !== undefined) return redirectToHttps(req, res, host, httpsPort);
    ctx.inFlight.start();
    res.once('close', () => ctx.inFlight.done());
    const pool = ctx.backends.get(route.service);
    if (pool?.isReady) go(ctx, route, pool, req, res, fwd);
    else {
      void readyPool(ctx, route).then((p) => {
        if (!p) return reply(res, 503, `no live backend for ${route.service}`);
        go(ctx, route, p, req, res, fwd);
      });
    }
  };
}

function go(ctx: ProxyContext, route: HttpRoute, pool: ServicePool, req: IncomingMessage, res: ServerResponse, fwd: ForwardedRequest): void {
  const first = firstBackend(ctx, route, pool, fwd.cookie);
  const timeouts = timeoutsOf(ctx, route);
  if (fwd.hasBody) return proxyWithBody(ctx, route, pool, req, res, fwd.headers, timeouts, first);
  req.resume();
  new BodylessExchange(ctx, route, pool, req, res, fwd.headers, timeouts).start(first.backend, first.pinned);
}

/** Why a request is refused with 400 before routing, if it is. */
function badRequest(fwd: ForwardedRequest): string | undefined {
  if (fwd.host === undefined) return 'missing Host header';
  if (fwd.hostCount > 1) return 'more than one Host header';
  return undefined;
}

function redirectToHttps(req: IncomingMessage, res: ServerResponse, host: string, port: number): void {
  req.resume();
  const name = hostname(host);
  const location = `https://${name}${port === 443 ? '' : `:${port}`}${req.url ?? '/'}`;
  // 308 keeps the method and body (301 would turn a POST into a GET).
  res.writeHead(308, { location, 'content-length': 0, 'cache-control': 'no-store' });
  res.end();
}

function optionsStar(req: IncomingMessage, res: ServerResponse): void {
  if (req.method !== 'OPTIONS') return reply(res, 400, `${req.method ?? ''} * is not a request`);
  req.resume();
  res.writeHead(200, { allow: 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS', 'content-length': 0 });
  res.end();
}

/** Response headers for the client, with the sticky cookie and the drain `Connection: close` added. */
export function clientHeaders(ctx: ProxyContext, route: HttpRoute, backend: Backend, pinned: boolean, raw: ReadonlyArray<Buffer | string>, https: boolean, h2: boolean): string[] {
  const out = responseHeaders(raw);
  if (route.sticky && !pinned) out.push('set-cookie', `${ctx.stickyCookie}=${ctx.signer.sign(route.id, backend.addr)}; Path=/; HttpOnly${https ? '; Secure' : ''}`);
  // HTTP/2 has no `Connection` header: its sessions are closed with GOAWAY instead.
  if (ctx.inFlight.draining && !h2) out.push('connection', 'close');
  return out;
}

/** The `upgrade` handler (WebSocket and any other `Upgrade`). */
export function createUpgradeHandler(ctx: ProxyContext, proto: 'http' | 'https', port: () => number): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  return (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    const fwd = forwardRequest(req, proto, String(port()), true);
    const bad = badRequest(fwd);
    if (bad) return replyRaw(socket, 400, bad);
    const host = fwd.host as string;
    const route = ctx.table.match(host, req.url ?? '/');
    if (!route) return replyRaw(socket, 404, `no route for ${hostname(host)}`);
    ctx.inFlight.sockets.add(socket);
    socket.once('close', () => ctx.inFlight.sockets.delete(socket));
    void readyPool(ctx, route).then((pool) => {
      if (!pool) return replyRaw(socket, 503, `no live backend for ${route.service}`);
      proxyUpgrade(ctx, route, pool, req, socket, head, fwd.headers, timeoutsOf(ctx, route));
    });
  };
}
