import { request, STATUS_CODES, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { settlesWithin } from '../common/lifecycle.js';
import type { Logger } from '../common/logger.js';
import type { Dispatcher } from 'undici';
import type { Backend, BackendRegistry, ServicePool } from './backends.js';
import { forwardRequest, responseHeaders, type ForwardedRequest } from './headers.js';
import { hostname, type HttpRouteTable } from './route-table.js';
import { readCookie, type StickySigner } from './sticky.js';
import type { HttpRoute } from './types.js';


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

/** Errors where the backend never accepted the connection, so another backend may take the request. */
function refused(code: string | undefined): boolean {
  return code === 'ECONNREFUSED' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'EADDRNOTAVAIL';
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
    if (backend) return { backend, pinned: true };
  }
  return { backend: pool.pick(), pinned: false };
}

/** The `request` handler of the router's HTTP and HTTPS servers. */
export function createRequestHandler(ctx: ProxyContext, proto: 'http' | 'https', port: () => number): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const fwd = forwardRequest(req, proto, String(port()), false);
    const host = fwd.host;
    if (host === undefined) return reply(res, 400, 'missing Host header');
    const route = ctx.table.match(host, req.url ?? '/');
    if (!route) return reply(res, 404, `no route for ${hostname(host)}`);
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
  if (fwd.hasBody) proxy(ctx, route, pool, req, res, fwd);
  else {
    req.resume();
    const first = firstBackend(ctx, route, pool, fwd.cookie);
    new BodylessExchange(ctx, route, pool, req, res, fwd.headers).attempt(first.backend, first.pinned);
  }
}

/** Methods that may be sent again when a pooled connection fails before an answer. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Response headers for the client, with the sticky cookie and the drain `Connection: close` added. */
function clientHeaders(ctx: ProxyContext, route: HttpRoute, backend: Backend, pinned: boolean, raw: ReadonlyArray<Buffer | string>, https: boolean): string[] {
  const out = responseHeaders(raw);
  if (route.sticky && !pinned) out.push('set-cookie', `${ctx.stickyCookie}=${ctx.signer.sign(route.id, backend.addr)}; Path=/; HttpOnly${https ? '; Secure' : ''}`);
  if (ctx.inFlight.draining) out.push('connection', 'close');
  return out;
}

/** Largest body the bodyless path gathers before writing, so that head and body leave in one write. */
const COALESCE_BYTES = 64 * 1024;

/**
 * One request without a body (most of them), sent through the backend's undici Pool with undici's
 * low-level handler interface: no stream, promise or abort-signal objects per request (measured
 * faster than undici's `stream()` and than node:http's client, docs/decisions.md). The body chunks
 * that arrive together with the head are written with it in one `res.end`; a longer or slower body
 * is written as it comes, with backpressure. Nothing is read from the client, so a refused
 * connection is retried on another backend, and an idle pooled connection the backend closed is
 * retried once for idempotent methods.
 */
class BodylessExchange implements Dispatcher.DispatchHandler {
  private readonly tried = new Set<Backend>();
  private readonly https: boolean;
  private readonly method: string;
  private backend: Backend | undefined;
  private pinned = false;
  private resent = false;
  private answered = false;
  private done = false;
  private aborted = false;
  private abortFn: ((err?: Error) => void) | undefined;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private flushScheduled = false;
  private resume: (() => void) | undefined;

  constructor(
    private readonly ctx: ProxyContext,
    private readonly route: HttpRoute,
    private readonly pool: ServicePool,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly headers: string[],
  ) {
    this.https = (req.socket as { encrypted?: boolean }).encrypted === true;
    this.method = req.method ?? 'GET';
    res.once('close', () => {
      if (res.writableFinished || this.done) return;
      this.aborted = true;
      this.abortFn?.(new Error('client went away'));
    });
  }

  attempt(backend: Backend | undefined, pinned: boolean): void {
    const { route, res } = this;
    if (!backend) return reply(res, 503, this.tried.size === 0 ? `no live backend for ${route.service}` : `no backend of ${route.service} accepted the connection`);
    this.tried.add(backend);
    this.backend = backend;
    this.pinned = pinned;
    this.abortFn = undefined;
    backend.acquire();
    backend.dispatcher.dispatch({ path: this.req.url ?? '/', method: this.method as 'GET', headers: this.headers }, this);
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.aborted) abort(new Error('client went away'));
    else this.abortFn = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[] | string[] | null, resume: () => void): boolean {
    if (statusCode < 200) return true; // 1xx: node's server answers `Expect` itself; the final head follows.
    const backend = this.backend as Backend;
    this.answered = true;
    this.resume = resume;
    this.res.writeHead(statusCode, clientHeaders(this.ctx, this.route, backend, this.pinned, rawHeaders ?? [], this.https));
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes < COALESCE_BYTES) {
      // Usually the whole answer is parsed in this same tick and onComplete writes it at once.
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        queueMicrotask(() => this.flushLater());
      }
      return true;
    }
    if (this.flush()) return true;
    this.res.once('drain', () => this.resume?.());
    return false;
  }

  onComplete(): void {
    this.done = true;
    const { res } = this;
    const pending = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    if (pending.length === 0) res.end();
    else if (pending.length === 1) res.end(pending[0]);
    else res.end(Buffer.concat(pending));
    this.release();
  }

  onError(err: Error & { code?: string }): void {
    const { ctx, route, pool, res } = this;
    const backend = this.backend as Backend;
    this.release();
    if (this.answered || res.headersSent || res.destroyed || this.aborted) {
      // The backend went away mid-response: cut the client off so it cannot mistake a truncated body for a whole one.
      res.destroy();
      return;
    }
    const code = err.code ?? '';
    if (refused(code)) {
      pool.markRefused(backend);
      ctx.logger.debug('backend refused; trying another', { service: route.service, addr: backend.addr, error: code });
      if (this.tried.size < ctx.maxAttempts) return this.attempt(pool.pick(this.tried), false);
      return reply(res, 503, `no backend of ${route.service} accepted the connection`);
    }
    const reset = IDEMPOTENT.has(this.method) && (code === 'UND_ERR_SOCKET' || code === 'ECONNRESET' || code === 'EPIPE');
    if (reset && !this.resent) {
      // Most likely a pooled connection the backend closed while idle: send once more.
      this.resent = true;
      ctx.logger.debug('backend connection reset; sending again', { service: route.service, addr: backend.addr, error: code });
      return this.attempt(backend, this.pinned);
    }
    ctx.logger.warn('backend failed', { service: route.service, addr: backend.addr, error: err.message });
    reply(res, 502, `backend ${backend.addr} failed before answering`);
  }

  private release(): void {
    const backend = this.backend;
    this.backend = undefined;
    if (backend) backend.release();
  }

  /** A body that did not complete in the tick it started in: write what came so far. */
  private flushLater(): void {
    this.flushScheduled = false;
    if (this.done || this.pending.length === 0 || this.res.destroyed) return;
    // A full socket buffer here is handled by the next onData: it pauses undici until `drain`.
    this.flush();
  }

  /** Write the gathered chunks; false when the client is slow (undici pauses until `drain`). */
  private flush(): boolean {
    const pending = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    return this.res.write(pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending));
  }
}

/**
 * Requests with a body go through node:http with a keep-alive Agent per backend: the body is piped
 * only once the backend accepted the connection, so a refused connection leaves it unread and the
 * request can be retried on another backend.
 */
function proxy(ctx: ProxyContext, route: HttpRoute, pool: ServicePool, req: IncomingMessage, res: ServerResponse, fwd: ForwardedRequest): void {
  const tried = new Set<Backend>();
  const first = firstBackend(ctx, route, pool, fwd.cookie);
  const headers = fwd.headers;
  const https = (req.socket as { encrypted?: boolean }).encrypted === true;
  let current: ClientRequest | undefined;
  res.once('close', () => {
    if (!res.writableFinished) current?.destroy();
  });

  const attempt = (backend: Backend | undefined, pinned: boolean): void => {
    if (!backend) return reply(res, 503, tried.size === 0 ? `no live backend for ${route.service}` : `no backend of ${route.service} accepted the connection`);
    tried.add(backend);
    const release = backend.lease();
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
      const out = clientHeaders(ctx, route, backend, pinned, pres.rawHeaders, https);
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
    const { host, headers } = forwardRequest(req, proto, String(port()), true);
    if (host === undefined) return replyRaw(socket, 400, 'missing Host header');
    const route = ctx.table.match(host, req.url ?? '/');
    if (!route) return replyRaw(socket, 404, `no route for ${hostname(host)}`);
    ctx.inFlight.sockets.add(socket);
    socket.once('close', () => ctx.inFlight.sockets.delete(socket));
    void readyPool(ctx, route).then((pool) => {
      if (!pool) return replyRaw(socket, 503, `no live backend for ${route.service}`);
      const tried = new Set<Backend>();
      const attempt = (backend: Backend | undefined): void => {
        if (!backend) return replyRaw(socket, 503, tried.size === 0 ? `no live backend for ${route.service}` : `no backend of ${route.service} accepted the connection`);
        if (socket.destroyed) return;
        tried.add(backend);
        const release = backend.lease();
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
