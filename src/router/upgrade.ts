import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Backend, ServicePool } from './backends.js';
import { Failover, type FailoverTarget } from './failover.js';
import { responseHeaders } from './headers.js';
import { replyRaw, type ProxyContext, type Timeouts } from './proxy-context.js';
import type { HttpRoute } from './types.js';

/**
 * An Upgrade (WebSocket or other) through the backend's undici pool, with undici's `upgrade`
 * option: once the backend answers 101, undici hands its connection over and the two sockets are
 * piped raw, closed together after `websocketIdleMs` of silence. A backend that declines gets its
 * answer relayed and the client's connection closed. Tries go through the same {@link Failover}
 * as plain requests; undici enforces the connect and response-headers timeouts.
 */
export class UpgradeExchange implements Dispatcher.DispatchHandler, FailoverTarget {
  private readonly failover: Failover;
  private backend: Backend | undefined;
  private answered = false;
  private abortOnClose: (() => void) | undefined;

  constructor(
    ctx: ProxyContext,
    route: HttpRoute,
    private readonly pool: ServicePool,
    private readonly req: IncomingMessage,
    private readonly socket: Duplex,
    private readonly head: Buffer,
    private readonly headers: string[],
    private readonly upgrade: string,
    private readonly timeouts: Timeouts,
  ) {
    this.failover = new Failover(ctx, route, pool, true, this);
  }

  start(): void {
    this.failover.start(this.pool.pick(), false);
  }

  giveUp(status: number, message: string): void {
    replyRaw(this.socket, status, message);
  }

  send(backend: Backend): void {
    if (this.socket.destroyed) return;
    const t = this.timeouts;
    this.backend = backend;
    backend.acquire();
    backend.dispatcher(t.connectMs).dispatch(
      { path: this.req.url ?? '/', method: (this.req.method ?? 'GET') as 'GET', headers: this.headers, upgrade: this.upgrade, headersTimeout: t.responseHeadersMs, bodyTimeout: t.idleMs },
      this,
    );
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.socket.destroyed) return abort(new Error('client went away'));
    this.abortOnClose = () => abort(new Error('client went away'));
    this.socket.once('close', this.abortOnClose);
  }

  onUpgrade(statusCode: number, rawHeaders: Buffer[] | string[] | null, psocket: Duplex): void {
    const { socket } = this;
    const backend = this.backend as Backend;
    this.backend = undefined;
    this.answered = true;
    this.stopAbortOnClose();
    this.failover.answered(backend);
    psocket.on('error', () => socket.destroy());
    psocket.once('close', () => {
      backend.release();
      socket.destroy();
    });
    socket.once('close', () => psocket.destroy());
    const idle = () => {
      socket.destroy();
      psocket.destroy();
    };
    const ms = this.timeouts.websocketIdleMs;
    (socket as Socket).setTimeout?.(ms, idle);
    (psocket as Socket).setTimeout?.(ms, idle);
    socket.write(rawHead(statusCode, rawHeaders ?? [], false));
    if (this.head.length > 0) psocket.write(this.head);
    // undici put back whatever the backend sent after its 101 head: the pipe delivers it first.
    psocket.pipe(socket);
    socket.pipe(psocket);
  }

  /** The backend declined the upgrade (any status but 101): its answer goes to the client, which is then closed. */
  onHeaders(statusCode: number, rawHeaders: Buffer[] | string[] | null): boolean {
    if (statusCode < 200) return true;
    this.answered = true;
    this.failover.answered(this.backend as Backend);
    this.socket.write(rawHead(statusCode, rawHeaders ?? [], true));
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.socket.write(chunk);
    return true;
  }

  onComplete(): void {
    this.socket.end();
    this.release();
  }

  onError(err: Error & { code?: string }): void {
    const backend = this.backend;
    this.release();
    if (this.answered) this.socket.destroy();
    else if (backend && !this.socket.destroyed) this.failover.failed(backend, err);
  }

  private release(): void {
    this.stopAbortOnClose();
    const backend = this.backend;
    this.backend = undefined;
    backend?.release();
  }

  private stopAbortOnClose(): void {
    if (this.abortOnClose) this.socket.off('close', this.abortOnClose);
    this.abortOnClose = undefined;
  }
}

/** A response head written raw on the client's socket; a declined upgrade's body is framed by closing the connection. */
function rawHead(status: number, raw: ReadonlyArray<Buffer | string>, close: boolean): string {
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n`;
  // A 101 keeps its `Connection`/`Upgrade` headers as the backend sent them; any other answer loses its hop-by-hop ones.
  const headers = close ? [...responseHeaders(raw), 'connection', 'close'] : raw.map((h) => (typeof h === 'string' ? h : h.toString('latin1')));
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
  return head + '\r\n';
}
