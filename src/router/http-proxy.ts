import { maxHeaderSize, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { settlesWithin } from '../common/lifecycle.js';
import { acmeAnswer, ACME_CHALLENGE_PATH } from './acme-challenge.js';
import type { Backend, ServicePool } from './backends.js';
import { HttpExchange } from './exchange.js';
import { H1Exchange } from './h1-exchange.js';
import type { FastHandler } from './h1-front.js';
import { reply, replyRaw, type ProxyContext, type Timeouts } from './proxy-context.js';
import { forwardRequest, type ForwardedRequest } from './headers.js';
import { originForm, targetError } from './request-target.js';
import { hostname } from './route-table.js';
import { UpgradeExchange } from './upgrade.js';
import { readCookie } from './sticky.js';
import type { HttpRoute } from './types.js';

function timeoutsOf(ctx: ProxyContext, route: HttpRoute): Timeouts {
  return route.timeouts ? { ...ctx.timeouts, ...route.timeouts } : ctx.timeouts;
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
  const requestDone = () => ctx.inFlight.done();
  return (req, res) => {
    const fwd = forwardRequest(req, proto, String(port()), false);
    // HTTP/1 heads over node's limit never get here (node's parser refuses them: node-engine.ts answers 431).
    if (fwd.headerBytes > maxHeaderSize) return reply(res, 431, `request headers larger than ${maxHeaderSize} bytes`);
    const bad = badRequest(req, fwd);
    if (bad) return reply(res, 400, bad);
    const host = fwd.host as string;
    // `OPTIONS *` asks about the server, not a resource: the router answers it itself (as nginx does).
    if (req.url === '*') return optionsStar(req, res);
    if (req.url?.startsWith(ACME_CHALLENGE_PATH)) {
      const answer = acmeAnswer(ctx.table.routes(), hostname(host), req.url);
      if (answer !== undefined) return replyText(req, res, answer);
    }
    const route = ctx.table.match(host, req.url ?? '/');
    if (!route) return reply(res, 404, `no route for ${hostname(host)}`);
    const httpsPort = ctx.httpsPort();
    if (route.redirectHttps && proto === 'http' && httpsPort !== undefined) return redirectToHttps(req, res, host, httpsPort);
    ctx.inFlight.start();
    res.once('close', requestDone);
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
  if (!fwd.hasBody) req.resume();
  // HTTP/1.x without a body (nearly all traffic) takes the fast path; bodies and HTTP/2 go through undici.
  if (!fwd.hasBody && req.httpVersionMajor === 1) {
    new H1Exchange(ctx, route, pool, req, res, fwd.headers, timeoutsOf(ctx, route)).start(first.backend, first.pinned);
    return;
  }
  new HttpExchange(ctx, route, pool, req, res, fwd.headers, timeoutsOf(ctx, route), fwd.hasBody).start(first.backend, first.pinned);
}

/** Something that watches each request (the access log, the metrics): a `request` listener. */
export type RequestObserver = (req: never, res: never) => void;

/**
 * The fast listener's handler (h1-front.ts): serves a plain proxied request, and leaves everything
 * the router answers itself (no route, ACME, HTTPS redirect, a service not ready yet) to the
 * general handler above by returning false.
 */
export function createFastHandler(ctx: ProxyContext, port: () => number, observers: RequestObserver[]): FastHandler {
  const requestDone = () => ctx.inFlight.done();
  return (req, res) => {
    if (req.url.startsWith(ACME_CHALLENGE_PATH)) return false;
    const fwd = forwardRequest(req, 'http', String(port()), false);
    const host = fwd.host as string;
    // A Host the router refuses is answered (400) by the general handler.
    if (targetError(host, req.url) !== undefined) return false;
    const route = ctx.table.match(host, req.url);
    if (!route || (route.redirectHttps && ctx.httpsPort() !== undefined)) return false;
    const pool = ctx.backends.get(route.service);
    if (!pool?.isReady) return false;
    for (const observe of observers) observe(req as never, res as never);
    ctx.inFlight.start();
    res.once('close', requestDone);
    const first = firstBackend(ctx, route, pool, fwd.cookie);
    new H1Exchange(ctx, route, pool, req, res, fwd.headers, timeoutsOf(ctx, route)).start(first.backend, first.pinned);
    return true;
  };
}

/**
 * Why a request is refused with 400 before routing, if it is. An absolute-form target that passes
 * (its authority is the Host) is rewritten to origin-form, which is what the backend gets.
 */
function badRequest(req: IncomingMessage, fwd: ForwardedRequest): string | undefined {
  if (fwd.host === undefined) return 'missing Host header';
  if (fwd.hostCount > 1) return 'more than one Host header';
  if (fwd.authorityConflict) return 'Host header differs from :authority';
  const url = req.url ?? '/';
  const bad = targetError(fwd.host, url);
  if (bad === undefined && url.charCodeAt(0) !== 47 /* / */) req.url = originForm(url);
  return bad;
}

function redirectToHttps(req: IncomingMessage, res: ServerResponse, host: string, port: number): void {
  req.resume();
  const name = hostname(host);
  const location = `https://${name}${port === 443 ? '' : `:${port}`}${req.url ?? '/'}`;
  // 308 keeps the method and body (301 would turn a POST into a GET).
  res.writeHead(308, { location, 'content-length': 0, 'cache-control': 'no-store' });
  res.end();
}

/** The router's own 200 answer (an ACME challenge's key authorization). */
function replyText(req: IncomingMessage, res: ServerResponse, body: string): void {
  req.resume();
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

function optionsStar(req: IncomingMessage, res: ServerResponse): void {
  if (req.method !== 'OPTIONS') return reply(res, 400, `${req.method ?? ''} * is not a request`);
  req.resume();
  res.writeHead(200, { allow: 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS', 'content-length': 0 });
  res.end();
}

/** The `upgrade` handler (WebSocket and any other `Upgrade`). */
export function createUpgradeHandler(ctx: ProxyContext, proto: 'http' | 'https', port: () => number): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  return (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    const fwd = forwardRequest(req, proto, String(port()), true);
    const bad = badRequest(req, fwd);
    if (bad) return replyRaw(socket, 400, bad);
    const host = fwd.host as string;
    const route = ctx.table.match(host, req.url ?? '/');
    if (!route) return replyRaw(socket, 404, `no route for ${hostname(host)}`);
    ctx.inFlight.sockets.add(socket);
    socket.once('close', () => ctx.inFlight.sockets.delete(socket));
    void readyPool(ctx, route).then((pool) => {
      if (!pool) return replyRaw(socket, 503, `no live backend for ${route.service}`);
      new UpgradeExchange(ctx, route, pool, req, socket, head, fwd.headers, fwd.upgrade ?? 'websocket', timeoutsOf(ctx, route)).start();
    });
  };
}
