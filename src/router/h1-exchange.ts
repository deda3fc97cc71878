import type { IncomingMessage } from 'node:http';
import type { Backend, ServicePool } from './backends.js';
import { Failover, type FailoverTarget } from './failover.js';
import type { ConnectionUser, H1Connection } from './h1-pool.js';
import { timeoutError } from './timeout-error.js';
import { clientHeaders, reply, type ClientResponse, type ProxyContext, type Timeouts } from './proxy-context.js';
import type { HttpRoute } from './types.js';

/** Methods that may be sent again when a connection fails before an answer. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * The node engine's fast path: one HTTP/1.x request without a body, sent on the backend's own
 * keep-alive connections (h1-pool.ts) as one write, its response read by the router's strict
 * parser (h1-response.ts) and written to the client with `res.writeHead`/`res.end` (node's server,
 * or h1-front.ts's own answer, frames it for the client). Requests with a body, HTTP/2 clients and
 * Upgrades take the general undici path (exchange.ts, upgrade.ts).
 *
 * Timeouts: the connection's own connect timer, then `responseHeadersMs` from the write to the
 * response head, then `idleMs` of silence while the body comes. A timed-out or abandoned request
 * closes its connection (its response could no longer be read in step).
 */
export class H1Exchange implements FailoverTarget, ConnectionUser {
  private readonly failover: Failover;
  private readonly head: string;
  private readonly isHead: boolean;
  private readonly https: boolean;
  private backend: Backend | undefined;
  private pinned = false;
  private conn: H1Connection | undefined;
  private answered = false;
  private done = false;
  private aborted = false;
  private timer: NodeJS.Timeout | undefined;
  /** The timer runs the body's idle timeout (else the response-headers one). */
  private timerIsIdle = false;
  private pending: Buffer[] = [];
  private paused = false;

  constructor(
    private readonly ctx: ProxyContext,
    private readonly route: HttpRoute,
    pool: ServicePool,
    req: Pick<IncomingMessage, 'method' | 'url' | 'socket'>,
    private readonly res: ClientResponse,
    headers: string[],
    private readonly timeouts: Timeouts,
  ) {
    const method = req.method ?? 'GET';
    this.isHead = method === 'HEAD';
    this.https = (req.socket as { encrypted?: boolean }).encrypted === true;
    this.head = requestHead(method, req.url ?? '/', headers);
    this.failover = new Failover(ctx, route, pool, IDEMPOTENT.has(method), this);
    res.once('close', () => {
      if (this.done) return;
      this.aborted = true;
      this.abandon();
    });
  }

  start(backend: Backend | undefined, pinned: boolean): void {
    this.failover.start(backend, pinned);
  }

  giveUp(status: number, message: string): void {
    reply(this.res, status, message);
  }

  send(backend: Backend, pinned: boolean): void {
    this.backend = backend;
    this.pinned = pinned;
    backend.acquire();
    backend.h1().request(this, this.timeouts.connectMs);
  }

  onConnected(conn: H1Connection): void {
    if (this.aborted) {
      conn.destroy();
      return this.release();
    }
    this.conn = conn;
    conn.send(this.head, this.isHead);
    const ms = this.timeouts.responseHeadersMs;
    this.timer = setTimeout(() => this.timedOut('headers-timeout', ms), ms);
  }

  onHead(status: number, headers: string[]): void {
    const backend = this.backend as Backend;
    this.answered = true;
    this.failover.answered(backend);
    this.res.writeHead(status, clientHeaders(this.ctx, this.route, backend, this.pinned, headers, this.https, false));
  }

  onBody(chunk: Buffer): void {
    this.pending.push(chunk);
  }

  /** A read ended inside the body: write what came, wait for the rest with the idle timeout. */
  afterRead(): void {
    if (!this.answered) return;
    if (this.timer === undefined || !this.timerIsIdle) this.idleTimer();
    else this.timer.refresh();
    if (this.pending.length === 0) return;
    const pending = this.pending;
    this.pending = [];
    const ok = this.res.write(pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending));
    if (!ok && !this.paused && this.conn) {
      // A slow client: stop reading the backend until the client's buffer drains (the backend's
      // silence meanwhile is the router's doing, so the idle timer stops too).
      this.paused = true;
      clearTimeout(this.timer);
      this.timerIsIdle = false;
      const socket = this.conn.socket;
      socket.pause();
      this.res.once('drain', () => {
        this.paused = false;
        if (this.done || this.conn === undefined) return;
        this.idleTimer();
        socket.resume();
      });
    }
  }

  onEnd(): void {
    this.done = true;
    this.conn = undefined;
    clearTimeout(this.timer);
    const pending = this.pending;
    this.pending = [];
    if (pending.length === 0) this.res.end();
    else this.res.end(pending.length === 1 ? pending[0] : Buffer.concat(pending));
    this.release();
  }

  onFail(err: Error & { code?: string }): void {
    const backend = this.backend as Backend;
    this.conn = undefined;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.release();
    if (this.answered || this.aborted || this.res.headersSent || this.res.destroyed) {
      // Cut the client off so it cannot mistake a truncated body for a whole one.
      this.done = true;
      this.res.destroy();
      return;
    }
    this.pending = [];
    this.failover.failed(backend, err);
  }

  private idleTimer(): void {
    clearTimeout(this.timer);
    this.timerIsIdle = true;
    const ms = this.timeouts.idleMs;
    this.timer = setTimeout(() => this.timedOut('idle-timeout', ms), ms);
  }

  private timedOut(kind: 'headers-timeout' | 'idle-timeout', ms: number): void {
    const conn = this.conn;
    this.conn = undefined;
    conn?.destroy();
    this.onFail(timeoutError(kind, ms));
  }

  /** The client went away: drop the backend connection mid-request. */
  private abandon(): void {
    clearTimeout(this.timer);
    const conn = this.conn;
    this.conn = undefined;
    if (conn) {
      conn.destroy();
      this.release();
    }
  }

  private release(): void {
    const backend = this.backend;
    this.backend = undefined;
    backend?.release();
  }
}

/** The request line and fields as one string, written in one go. */
function requestHead(method: string, url: string, headers: string[]): string {
  let head = `${method} ${url} HTTP/1.1\r\n`;
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i] as string}: ${headers[i + 1] as string}\r\n`;
  return `${head}\r\n`;
}
