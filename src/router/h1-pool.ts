import { connect, type Socket } from 'node:net';
import { ResponseParser, type ResponseSink } from './h1-response.js';
import { timeoutError } from './timeout-error.js';

/** What uses a pooled connection for one request: h1-exchange.ts. */
export interface ConnectionUser extends ResponseSink {
  /** The connection is up (new or reused): write the request on it. */
  onConnected(conn: H1Connection): void;
  /** After each read that carried body bytes but did not end the response. */
  afterRead(): void;
  /** The connection failed before the response ended (the error's `code` classifies it). */
  onFail(err: Error & { code?: string }): void;
}

/** A keep-alive hint is trusted minus this margin, so the router never writes as the backend closes (as undici does). */
const KEEP_ALIVE_MARGIN_MS = 1000;

/**
 * One keep-alive connection to a backend, for one request at a time. Its socket handlers are set
 * once; each request's {@link ConnectionUser} gets the parsed response.
 */
export class H1Connection implements ResponseSink {
  readonly socket: Socket;
  private readonly parser = new ResponseParser(this);
  private user: ConnectionUser | undefined;
  private connectTimer: NodeJS.Timeout | undefined;
  /** When it went back to the pool (ms, `performance.now()`). */
  idleSince = 0;
  closed = false;

  constructor(
    private readonly pool: H1Pool,
    user: ConnectionUser,
    connectMs: number,
  ) {
    this.user = user;
    const socket = (this.socket = connect({ host: pool.host, port: pool.port, noDelay: true }));
    this.connectTimer = setTimeout(() => this.fail(timeoutError('connect-timeout', connectMs)), connectMs);
    socket.once('connect', () => {
      clearTimeout(this.connectTimer);
      this.connectTimer = undefined;
      this.user?.onConnected(this);
    });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => this.onEof());
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(Object.assign(new Error('backend closed the connection'), { code: 'ECONNRESET' })));
  }

  /** Send one request head (and expect its response). */
  send(head: string, isHead: boolean): void {
    this.parser.expect(isHead);
    this.socket.write(head, 'latin1');
  }

  /** The backend's keep-alive hint, when it gave one. */
  get keepAliveMs(): number | undefined {
    return this.parser.keepAliveMs;
  }

  /** Hand the connection to a new request. */
  take(user: ConnectionUser): void {
    this.user = user;
    user.onConnected(this);
  }

  /** Close it: its request is abandoned (client gone, timeout), so the response can no longer be read in step. */
  destroy(): void {
    this.user = undefined;
    this.close();
  }

  onHead(status: number, headers: string[]): void {
    this.user?.onHead(status, headers);
  }

  onBody(chunk: Buffer): void {
    this.user?.onBody(chunk);
  }

  onEnd(reusable: boolean): void {
    const user = this.user;
    this.user = undefined;
    if (reusable && !this.closed) this.pool.putBack(this);
    else this.close();
    user?.onEnd(reusable);
  }

  private onData(chunk: Buffer): void {
    try {
      this.parser.feed(chunk);
    } catch (err) {
      return this.fail(err as Error);
    }
    this.user?.afterRead();
  }

  private onEof(): void {
    try {
      this.parser.eof();
    } catch (err) {
      // Nothing of the answer came: as a reset, so an idempotent request may be sent again.
      if (!this.parser.started) return this.fail(Object.assign(new Error('backend closed the connection before answering'), { code: 'ECONNRESET' }));
      return this.fail(err as Error);
    }
    this.close();
  }

  private fail(err: Error & { code?: string }): void {
    const user = this.user;
    this.user = undefined;
    this.close();
    user?.onFail(err);
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.connectTimer);
    this.pool.forget(this);
    this.socket.destroy();
  }
}

/**
 * The keep-alive connections to one backend for the router's fast path (h1-exchange.ts): idle
 * ones are reused newest first; one idle longer than the backend's `Keep-Alive: timeout` hint
 * (less a second) or than `keepAliveMs` is closed instead of used.
 */
export class H1Pool {
  private idle: H1Connection[] = [];
  private sweeper: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly keepAliveMs: number,
  ) {}

  /** A connection for `user`: an idle one at once, else a new one when it connects. */
  request(user: ConnectionUser, connectMs: number): void {
    const now = performance.now();
    for (let conn = this.idle.pop(); conn; conn = this.idle.pop()) {
      if (now - conn.idleSince < this.idleLimit(conn)) return conn.take(user);
      conn.destroy();
    }
    new H1Connection(this, user, connectMs);
  }

  putBack(conn: H1Connection): void {
    if (this.closed) return conn.destroy();
    conn.idleSince = performance.now();
    this.idle.push(conn);
    this.sweeper ??= setInterval(() => this.sweep(), 1000).unref();
  }

  forget(conn: H1Connection): void {
    const i = this.idle.indexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
  }

  /** Close the idle connections; busy ones close when their request ends. */
  close(): void {
    this.closed = true;
    clearInterval(this.sweeper);
    for (const conn of this.idle.splice(0)) conn.destroy();
  }

  private idleLimit(conn: H1Connection): number {
    const hint = conn.keepAliveMs;
    return hint === undefined ? this.keepAliveMs : Math.min(this.keepAliveMs, hint - KEEP_ALIVE_MARGIN_MS);
  }

  private sweep(): void {
    const now = performance.now();
    for (const conn of this.idle.slice()) if (now - conn.idleSince >= this.idleLimit(conn)) conn.destroy();
    if (this.idle.length === 0) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }
}
