import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { request, STATUS_CODES, type ClientRequest, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from '../common/logger.js';
import type { Backend, BackendRegistry, ServicePool } from './backends.js';
import { hostname, type HttpRouteTable } from './route-table.js';
import { readCookie, type StickySigner } from './sticky.js';
import type { HttpRoute } from './types.js';

/** Hop-by-hop headers (RFC 9110 §7.6.1) that are not forwarded. `transfer-encoding` is kept: node re-frames it. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade']);
/** Heroku's rule for a client-supplied request id. */
const REQUEST_ID_RE = /^[A-Za-z0-9+/=_.-]{20,200}$/;

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
  backends: BackendRegistry;
  signer: StickySigner;
  logger: Logger;
  inFlight: InFlight;
  maxAttempts: number;
  backendsReadyTimeoutMs: number;
  stickyCookie: string;
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
function replyRaw(socket: Duplex, status: number, message: string): void {
  const body = `${status} ${STATUS_CODES[status] ?? ''}: ${message}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

function clientIp(req: IncomingMessage): string {
  const addr = req.socket.remoteAddress ?? '';
  return addr.startsWith('::ffff:') ? addr.slice(7) : addr;
}

/** Request headers as the backend gets them: hop-by-hop removed, X-Forwarded-* and X-Request-* set. */
function forwardHeaders(req: IncomingMessage, proto: string, port: number, upgrade: boolean): OutgoingHttpHeaders {
  const src = req.headers;
  const out: OutgoingHttpHeaders = {};
  const connection = src.connection;
  const named = connection !== undefined && connection !== 'keep-alive' && connection !== 'close' && !upgrade
    ? new Set(connection.toLowerCase().split(',').map((s) => s.trim()))
    : undefined;
  for (const name in src) {
    if (HOP_BY_HOP.has(name) || named?.has(name)) continue;
    out[name] = src[name];
  }
  if (upgrade) {
    out.connection = 'upgrade';
    if (src.upgrade !== undefined) out.upgrade = src.upgrade;
  }
  const ip = clientIp(req);
  const xff = src['x-forwarded-for'];
  out['x-forwarded-for'] = xff ? `${xff}, ${ip}` : ip;
  out['x-forwarded-proto'] = proto;
  out['x-forwarded-port'] = String(port);
  out['x-request-start'] = `t=${Date.now()}`;
  const id = src['x-request-id'];
  out['x-request-id'] = typeof id === 'string' && REQUEST_ID_RE.test(id) ? id : randomUUID();
  return out;
}

function hasBody(req: IncomingMessage): boolean {
  const len = req.headers['content-length'];
  return (len !== undefined && len !== '0') || req.headers['transfer-encoding'] !== undefined;
}

/** Errors where the backend never accepted the connection, so another backend may take the request. */
function refused(code: string | undefined): boolean {
  return code === 'ECONNREFUSED' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'EADDRNOTAVAIL';
}

/** Resolve the route's pool, waiting briefly for discovery's first answer on a new service. */
async function readyPool(ctx: ProxyContext, route: HttpRoute): Promise<ServicePool | undefined> {
  const pool = ctx.backends.get(route.service);
  if (!pool || pool.isReady) return pool;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([pool.ready, new Promise<void>((resolve) => (timer = setTimeout(resolve, ctx.backendsReadyTimeoutMs)))]);
  clearTimeout(timer);
  return pool;
}

/** The backend a request starts on: the sticky one if its cookie is valid and it lives, else the balancer's pick. */
function firstBackend(ctx: ProxyContext, route: HttpRoute, pool: ServicePool, req: IncomingMessage): { backend: Backend | undefined; pinned: boolean } {
  if (route.sticky) {
    const value = readCookie(req.headers.cookie, ctx.stickyCookie);
    const addr = value === undefined ? undefined : ctx.signer.verify(route.id, value);
    const backend = addr === undefined ? undefined : pool.byAddr(addr);
    if (backend) return { backend, pinned: true };
  }
  return { backend: pool.pick(), pinned: false };
}

/** The `request` handler of the router's HTTP and HTTPS servers. */
export function createRequestHandler(ctx: ProxyContext, proto: 'http' | 'https', port: () => number): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const host = req.headers.host;
    if (host === undefined) return reply(res, 400, 'missing Host header');
    const route = ctx.table.match(host, req.url ?? '/');
    if (!route) return reply(res, 404, `no route for ${hostname(host)}`);
    ctx.inFlight.start();
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      ctx.inFlight.done();
    };
    res.once('close', finish);
    const pool = ctx.backends.get(route.service);
    const go = (p: ServicePool) => {
      const headers = forwardHeaders(req, proto, port(), false);
      if (hasBody(req)) proxy(ctx, route, p, req, res, headers);
      else proxyBodyless(ctx, route, p, req, res, headers);
    };
    if (pool?.isReady) go(pool);
    else {
      void readyPool(ctx, route).then((p) => {
        if (!p) return reply(res, 503, `no live backend for ${route.service}`);
        go(p);
      });
    }
  };
}

/** Methods that may be sent again when a pooled connection fails before an answer. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Response headers for the client, with the sticky cookie and the drain `Connection: close` added. */
function clientHeaders(ctx: ProxyContext, route: HttpRoute, backend: Backend, pinned: boolean, src: Record<string, string | string[] | undefined>, https: boolean): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const name in src) if (!HOP_BY_HOP.has(name)) out[name] = src[name];
  if (route.sticky && !pinned) {
    const cookie = `${ctx.stickyCookie}=${ctx.signer.sign(route.id, backend.addr)}; Path=/; HttpOnly${https ? '; Secure' : ''}`;
    const prev = out['set-cookie'];
    out['set-cookie'] = prev === undefined ? [cookie] : Array.isArray(prev) ? [...prev, cookie] : [String(prev), cookie];
  }
  if (ctx.inFlight.draining) out.connection = 'close';
  return out;
}

/**
 * Requests without a body (most of them) go through an undici Pool per backend: measured faster
 * than node:http's client (docs/decisions.md). Nothing is read from the client, so a refused
 * connection is retried on another backend.
 */
function proxyBodyless(ctx: ProxyContext, route: HttpRoute, pool: ServicePool, req: IncomingMessage, res: ServerResponse, headers: OutgoingHttpHeaders): void {
  req.resume();
  delete headers.expect;
  delete headers['transfer-encoding'];
  const https = headers['x-forwarded-proto'] === 'https';
  const method = req.method ?? 'GET';
  const tried = new Set<Backend>();
  // undici takes an EventEmitter as abort signal: much cheaper per request than an AbortController.
  const abort = new EventEmitter() as EventEmitter & { aborted?: boolean };
  res.once('close', () => {
    if (res.writableFinished) return;
    abort.aborted = true;
    abort.emit('abort');
  });
  const first = firstBackend(ctx, route, pool, req);
  let resent = false;
  const attempt = (backend: Backend | undefined, pinned: boolean): void => {
    if (!backend) return reply(res, 503, tried.size === 0 ? `no live backend for ${route.service}` : `no backend of ${route.service} accepted the connection`);
    tried.add(backend);
    backend.acquire();
    let answered = false;
    backend.dispatcher
      .stream(
        { path: req.url ?? '/', method: method as 'GET', headers: headers as Record<string, string>, signal: abort },
        ({ statusCode, headers: rh }) => {
          answered = true;
          res.writeHead(statusCode, clientHeaders(ctx, route, backend, pinned, rh, https));
          return res;
        },
      )
      .then(
        () => backend.release(),
        (err: Error & { code?: string }) => {
          backend.release();
          if (answered || res.headersSent || res.destroyed) {
            // The backend went away mid-response: cut the client off so it cannot mistake a truncated body for a whole one.
            res.destroy();
            return;
          }
          const code = err.code ?? '';
          const reset = IDEMPOTENT.has(method) && (code === 'UND_ERR_SOCKET' || code === 'ECONNRESET' || code === 'EPIPE');
          if (refused(code)) {
            pool.markRefused(backend);
            ctx.logger.debug('backend refused; trying another', { service: route.service, addr: backend.addr, error: code });
            if (tried.size < ctx.maxAttempts) return attempt(pool.pick(tried), false);
            return reply(res, 503, `no backend of ${route.service} accepted the connection`);
          }
          if (reset && !resent) {
            // Most likely a pooled connection the backend closed while idle: send once more.
            resent = true;
            ctx.logger.debug('backend connection reset; sending again', { service: route.service, addr: backend.addr, error: code });
            return attempt(backend, pinned);
          }
          ctx.logger.warn('backend failed', { service: route.service, addr: backend.addr, error: err.message });
          reply(res, 502, `backend ${backend.addr} failed before answering`);
        },
      );
  };
  attempt(first.backend, first.pinned);
}

/**
 * Requests with a body go through node:http with a keep-alive Agent per backend: the body is piped
 * only once the backend accepted the connection, so a refused connection leaves it unread and the
 * request can be retried on another backend.
 */
function proxy(ctx: ProxyContext, route: HttpRoute, pool: ServicePool, req: IncomingMessage, res: ServerResponse, headers: OutgoingHttpHeaders): void {
  const tried = new Set<Backend>();
  const first = firstBackend(ctx, route, pool, req);
  let current: ClientRequest | undefined;
  res.once('close', () => {
    if (!res.writableFinished) current?.destroy();
  });

  const attempt = (backend: Backend | undefined, pinned: boolean): void => {
    if (!backend) return reply(res, 503, tried.size === 0 ? `no live backend for ${route.service}` : `no backend of ${route.service} accepted the connection`);
    tried.add(backend);
    backend.acquire();
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      backend.release();
    };
    const preq = request({
      host: backend.host,
      port: backend.port,
      method: req.method,
      path: req.url,
      headers,
      agent: backend.agent,
      setHost: false,
    });
    current = preq;
    // Send the body only once connected: a refused connection leaves it unread for the next backend.
    preq.once('socket', (socket) => {
      if ((socket as { connecting?: boolean }).connecting) socket.once('connect', () => req.pipe(preq));
      else req.pipe(preq);
    });
    preq.once('response', (pres) => {
      const out = clientHeaders(ctx, route, backend, pinned, pres.headers, headers['x-forwarded-proto'] === 'https');
      res.writeHead(pres.statusCode ?? 502, pres.statusMessage, out);
      pres.pipe(res);
      pres.once('close', () => {
        release();
        // The backend went away mid-response: cut the client off so it cannot mistake a truncated body for a whole one.
        if (!pres.complete) res.destroy();
      });
    });
    preq.once('error', (err: NodeJS.ErrnoException) => {
      release();
      if (res.headersSent || res.destroyed) {
        res.destroy();
        return;
      }
      if (refused(err.code)) {
        pool.markRefused(backend);
        ctx.logger.debug('backend refused; trying another', { service: route.service, addr: backend.addr, error: err.code });
        if (tried.size < ctx.maxAttempts) return attempt(pool.pick(tried), false);
        return reply(res, 503, `no backend of ${route.service} accepted the connection`);
      }
      ctx.logger.warn('backend failed', { service: route.service, addr: backend.addr, error: err.message });
      reply(res, 502, `backend ${backend.addr} failed before answering`);
    });
  };
  attempt(first.backend, first.pinned);
}

/** The `upgrade` handler (WebSocket and any other `Upgrade`): a raw two-way pipe once the backend agrees. */
export function createUpgradeHandler(ctx: ProxyContext, proto: 'http' | 'https', port: () => number): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  return (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    const host = req.headers.host;
    if (host === undefined) return replyRaw(socket, 400, 'missing Host header');
    const route = ctx.table.match(host, req.url ?? '/');
    if (!route) return replyRaw(socket, 404, `no route for ${hostname(host)}`);
    ctx.inFlight.sockets.add(socket);
    socket.once('close', () => ctx.inFlight.sockets.delete(socket));
    const headers = forwardHeaders(req, proto, port(), true);
    void readyPool(ctx, route).then((pool) => {
      if (!pool) return replyRaw(socket, 503, `no live backend for ${route.service}`);
      const tried = new Set<Backend>();
      const attempt = (backend: Backend | undefined): void => {
        if (!backend) return replyRaw(socket, 503, tried.size === 0 ? `no live backend for ${route.service}` : `no backend of ${route.service} accepted the connection`);
        if (socket.destroyed) return;
        tried.add(backend);
        backend.acquire();
        let released = false;
        const release = () => {
          if (released) return;
          released = true;
          backend.release();
        };
        const preq = request({ host: backend.host, port: backend.port, method: req.method, path: req.url, headers, agent: false, setHost: false });
        preq.end();
        socket.once('close', () => preq.destroy());
        preq.once('upgrade', (pres, psocket, phead) => {
          psocket.on('error', () => socket.destroy());
          psocket.once('close', () => {
            release();
            socket.destroy();
          });
          socket.once('close', () => psocket.destroy());
          socket.write(rawHead(pres));
          if (phead.length > 0) socket.write(phead);
          if (head.length > 0) psocket.write(head);
          psocket.pipe(socket);
          socket.pipe(psocket);
        });
        preq.once('response', (pres) => {
          // The backend declined the upgrade: relay its answer and close.
          socket.write(rawHead(pres));
          pres.pipe(socket);
          pres.once('close', release);
        });
        preq.once('error', (err: NodeJS.ErrnoException) => {
          release();
          if (refused(err.code) && tried.size < ctx.maxAttempts) {
            pool.markRefused(backend);
            return attempt(pool.pick(tried));
          }
          replyRaw(socket, 502, `backend ${backend.addr} failed the upgrade`);
        });
      };
      attempt(pool.pick());
    });
  };
}

function rawHead(pres: IncomingMessage): string {
  let head = `HTTP/1.1 ${pres.statusCode} ${pres.statusMessage}\r\n`;
  const raw = pres.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) head += `${raw[i]}: ${raw[i + 1]}\r\n`;
  return head + '\r\n';
}
