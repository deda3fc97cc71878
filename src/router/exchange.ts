import type { IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Backend, ServicePool } from './backends.js';
import { Failover, type FailoverTarget } from './failover.js';
import { timeoutError } from './timeout-error.js';
import { clientHeaders, reply, type ProxyContext, type Timeouts } from './proxy-context.js';
import type { HttpRoute } from './types.js';

/** Methods that may be sent again when a connection fails before an answer. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Largest body the exchange gathers before writing, so that head and body leave in one write. */
const COALESCE_BYTES = 64 * 1024;

/** Exchanges with body chunks gathered in this tick: one microtask for all of them, not one closure per request. */
let toFlush: HttpExchange[] = [];

function flushLater(exchange: HttpExchange): void {
  if (toFlush.push(exchange) === 1) queueMicrotask(flushAll);
}

function flushAll(): void {
  const exchanges = toFlush;
  toFlush = [];
  for (const exchange of exchanges) exchange.flushPending();
}

/**
 * One HTTP request, with or without a body, sent through the backend's undici pool with undici's
 * low-level handler interface: no stream, promise or abort-signal objects per request (measured
 * faster than undici's `stream()` and than node:http's client, docs/decisions.md). The body chunks
 * that arrive together with the head are written with it in one `res.end`; a longer or slower body
 * is written as it comes, with backpressure.
 *
 * A request body is read from the client only once the backend's connection is up, so a refused
 * or timed-out connect leaves it unread for the next backend ({@link Failover}). undici enforces
 * the connect and response-body timeouts, and the response-headers timeout of a request without a
 * body; for a body this exchange keeps one timer: `idleMs` of silence while the body goes out,
 * then `responseHeadersMs` from its end to the response head.
 */
export class HttpExchange implements Dispatcher.DispatchHandler, FailoverTarget {
  private readonly failover: Failover;
  private readonly https: boolean;
  private readonly h2: boolean;
  private readonly method: string;
  private backend: Backend | undefined;
  private pinned = false;
  private answered = false;
  private done = false;
  private aborted = false;
  private abortFn: ((err?: Error) => void) | undefined;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private flushScheduled = false;
  private resume: (() => void) | undefined;
  /** The body of the current try (a request with a body only): piped from the client once connected. */
  private body: PassThrough | undefined;
  private bodyTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ctx: ProxyContext,
    private readonly route: HttpRoute,
    pool: ServicePool,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly headers: string[],
    private readonly timeouts: Timeouts,
    private readonly hasBody: boolean,
  ) {
    this.https = (req.socket as { encrypted?: boolean }).encrypted === true;
    this.method = req.method ?? 'GET';
    this.h2 = req.httpVersionMajor === 2;
    this.failover = new Failover(ctx, route, pool, !hasBody && IDEMPOTENT.has(this.method), this);
    res.once('close', () => {
      if (res.writableFinished || this.done) return;
      this.aborted = true;
      this.abortFn?.(new Error('client went away'));
    });
  }

  start(backend: Backend | undefined, pinned: boolean): void {
    this.failover.start(backend, pinned);
  }

  giveUp(status: number, message: string): void {
    reply(this.res, status, message);
  }

  send(backend: Backend, pinned: boolean): void {
    const t = this.timeouts;
    this.backend = backend;
    this.pinned = pinned;
    this.abortFn = undefined;
    backend.acquire();
    // undici destroys a body it gives up on: it gets a pipe of the client's request, never the request itself.
    const body = this.hasBody ? (this.body = new PassThrough()) : null;
    backend.dispatcher(t.connectMs).dispatch(
      { path: this.req.url ?? '/', method: this.method as 'GET', headers: this.headers, body, headersTimeout: body ? 0 : t.responseHeadersMs, bodyTimeout: t.idleMs },
      this,
    );
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.aborted) return abort(new Error('client went away'));
    this.abortFn = abort;
    // undici calls this as it starts writing the request: only now is the client's body read.
    if (this.body) this.sendBody(this.body);
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[] | string[] | null, resume: () => void): boolean {
    if (statusCode < 200) return true; // 1xx: node's server answers `Expect` itself; the final head follows.
    const backend = this.backend as Backend;
    this.stopBodyTimer();
    this.answered = true;
    this.resume = resume;
    this.failover.answered(backend);
    this.res.writeHead(statusCode, clientHeaders(this.ctx, this.route, backend, this.pinned, rawHeaders ?? [], this.https, this.h2));
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes < COALESCE_BYTES) {
      // Usually the whole answer is parsed in this same tick and onComplete writes it at once.
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        flushLater(this);
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
    const backend = this.backend as Backend;
    this.release();
    this.stopBodyTimer();
    if (this.body) this.req.unpipe(this.body);
    if (this.answered || this.res.headersSent || this.res.destroyed || this.aborted) {
      // The backend went away (or stalled) mid-response: cut the client off so it cannot mistake a truncated body for a whole one.
      this.res.destroy();
      return;
    }
    this.failover.failed(backend, err);
  }

  /** Pipe the client's body to this try, timing its silences, then the wait for the answer. */
  private sendBody(body: PassThrough): void {
    const { req, timeouts: t } = this;
    const expire = (kind: 'idle-timeout' | 'headers-timeout', ms: number) => () => this.abortFn?.(timeoutError(kind, ms));
    this.bodyTimer = setTimeout(expire('idle-timeout', t.idleMs), t.idleMs);
    const active = () => this.bodyTimer?.refresh();
    req.on('data', active);
    req.once('end', () => {
      req.off('data', active);
      if (this.bodyTimer === undefined) return;
      clearTimeout(this.bodyTimer);
      this.bodyTimer = setTimeout(expire('headers-timeout', t.responseHeadersMs), t.responseHeadersMs);
    });
    req.pipe(body);
  }

  private stopBodyTimer(): void {
    clearTimeout(this.bodyTimer);
    this.bodyTimer = undefined;
  }

  private release(): void {
    const backend = this.backend;
    this.backend = undefined;
    if (backend) backend.release();
  }

  /** A body that did not complete in the tick it started in: write what came so far. */
  flushPending(): void {
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
