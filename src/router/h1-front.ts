import { EventEmitter } from 'node:events';
import { STATUS_CODES, type Server } from 'node:http';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { parseFields, startLine } from './h1-fields.js';

/**
 * The node engine's plain-HTTP listener: a `net` server that serves the common request itself —
 * HTTP/1.1, GET/HEAD/DELETE/OPTIONS, no body, no Upgrade or Expect, one Host, a whole head in one
 * read — and hands the connection to node's HTTP server, from the first byte of the first request
 * it does not take, for everything else (bodies, Upgrades, HTTP/1.0, malformed requests and their
 * 400s, slow heads and their timeouts). What it takes it parses strictly (anything it is unsure
 * of goes to node's parser, which answers or refuses it as before); it frames its own answers.
 * It exists because node's HTTP server objects cost more CPU per request than the whole proxying
 * (docs/router.md, "Node engine internals").
 */

/** The fast path's view of one request: what the proxy and the access log / metrics observers read. */
export class FastRequest {
  readonly httpVersion = '1.1';
  readonly httpVersionMajor = 1;
  readonly httpVersionMinor = 1;
  private parsed: Record<string, string> | undefined;

  constructor(
    readonly method: string,
    readonly url: string,
    readonly rawHeaders: string[],
    readonly socket: Socket,
  ) {}

  /** Lower-cased names, first value of each (made only when an observer asks). */
  get headers(): Record<string, string> {
    if (!this.parsed) {
      const h: Record<string, string> = {};
      for (let i = 0; i < this.rawHeaders.length; i += 2) h[(this.rawHeaders[i] as string).toLowerCase()] ??= this.rawHeaders[i + 1] as string;
      this.parsed = h;
    }
    return this.parsed;
  }
}

/** Serves a taken request; false hands it to node's HTTP server instead (nothing was answered yet). */
export type FastHandler = (req: FastRequest, res: FastResponse) => boolean;

const REQUEST_LINE = /^(GET|HEAD|DELETE|OPTIONS) (\/[!-~]*) HTTP\/1\.1$/;
/** Largest request head the fast path takes (node's server, with its own limit, gets longer ones). */
const MAX_HEAD = 16 * 1024;

let dateCache = '';
let dateSecond = 0;
/** The `Date` header's value, made once a second. */
function httpDate(): string {
  const second = Math.floor(Date.now() / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateCache = new Date(second * 1000).toUTCString();
  }
  return dateCache;
}

/**
 * An HTTP/1.1 answer written straight to the client's socket, with the part of `ServerResponse`'s
 * interface the proxy uses. Framing: the backend's `Content-Length` when it has one, else chunked;
 * no body for HEAD, 204 and 304.
 */
export class FastResponse extends EventEmitter {
  statusCode = 200;
  headersSent = false;
  destroyed = false;
  writableFinished = false;
  private head = '';
  private chunked = false;
  private noBody: boolean;
  /** Close the connection after this answer (client asked, router draining). */
  closeAfter: boolean;

  constructor(
    private readonly conn: ClientConnection,
    isHead: boolean,
    closeAfter: boolean,
  ) {
    super();
    this.noBody = isHead;
    this.closeAfter = closeAfter;
  }

  writeHead(status: number, headers: string[] | Record<string, string | number>): this {
    this.statusCode = status;
    this.headersSent = true;
    const flat = Array.isArray(headers) ? headers : Object.entries(headers).flat().map(String);
    let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n`;
    let length = false;
    let date = false;
    for (let i = 0; i < flat.length; i += 2) {
      const name = flat[i] as string;
      const value = flat[i + 1] as string;
      switch (name.length) {
        case 4:
          if (name.toLowerCase() === 'date') date = true;
          break;
        case 10:
          // The proxy's own `Connection: close` (a draining router); a backend's never gets this far.
          if (name.toLowerCase() === 'connection') {
            this.closeAfter = true;
            continue;
          }
          break;
        case 14:
          if (name.toLowerCase() === 'content-length') length = true;
          break;
      }
      head += `${name}: ${value}\r\n`;
    }
    if (status === 204 || status === 304) this.noBody = true;
    if (!date) head += `date: ${httpDate()}\r\n`;
    if (!this.noBody && !length) {
      this.chunked = true;
      head += 'transfer-encoding: chunked\r\n';
    }
    // As node's server: a kept connection says for how long it stays open when idle.
    this.head = this.closeAfter ? `${head}connection: close\r\n\r\n` : `${head}connection: keep-alive\r\n${this.conn.front.keepAliveHeader}\r\n`;
    return this;
  }

  /** Write part of the body; false when the client's buffer is full (wait for `drain`). */
  write(chunk: Buffer): boolean {
    if (this.destroyed) return false;
    const socket = this.conn.socket;
    if (socket.write(this.frame(chunk))) return true;
    socket.once('drain', () => this.emit('drain'));
    return false;
  }

  end(chunk?: Buffer | string): this {
    if (this.destroyed || this.writableFinished) return this;
    if (!this.headersSent) this.writeHead(this.statusCode, []);
    const body = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    let out = this.frame(body);
    if (this.chunked) out = out.length === 0 ? Buffer.from('0\r\n\r\n', 'latin1') : Buffer.concat([out, Buffer.from('0\r\n\r\n', 'latin1')]);
    this.conn.socket.write(out);
    this.writableFinished = true;
    this.conn.answered(this);
    this.emit('finish');
    this.emit('close');
    return this;
  }

  destroy(): this {
    if (this.destroyed || this.writableFinished) return this;
    this.destroyed = true;
    this.conn.socket.destroy();
    return this;
  }

  /** The client's socket closed before the answer ended. */
  aborted(): void {
    if (this.writableFinished) return;
    this.destroyed = true;
    this.emit('close');
  }

  /** The head (if not written yet) and a piece of body, framed, as one buffer. */
  private frame(body: Buffer | undefined): Buffer {
    const head = this.head;
    this.head = '';
    const data = this.noBody || !body || body.length === 0 ? undefined : body;
    if (this.chunked && data) {
      const prefix = `${head}${data.length.toString(16)}\r\n`;
      const out = Buffer.allocUnsafe(prefix.length + data.length + 2);
      out.write(prefix, 0, 'latin1');
      data.copy(out, prefix.length);
      out.write('\r\n', prefix.length + data.length, 'latin1');
      return out;
    }
    if (!data) return Buffer.from(head, 'latin1');
    if (head === '') return data;
    const out = Buffer.allocUnsafe(head.length + data.length);
    out.write(head, 0, 'latin1');
    data.copy(out, head.length);
    return out;
  }
}

/** One client connection while the fast path serves it. */
class ClientConnection {
  private buffered: Buffer | undefined;
  private current: FastResponse | undefined;
  idleSince = performance.now();
  private readonly onData = (chunk: Buffer) => this.read(chunk);
  // A client that ends its side gives up its request in flight, as with node's server (no `httpAllowHalfOpen`).
  private readonly onEnd = () => {
    if (this.current) this.socket.destroy();
    else this.socket.end();
  };
  private readonly onClose = () => {
    this.front.forget(this);
    this.current?.aborted();
  };
  private readonly onError = () => this.socket.destroy();

  constructor(
    readonly socket: Socket,
    readonly front: FastFront,
  ) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('close', this.onClose);
    socket.on('error', this.onError);
  }

  get idle(): boolean {
    return this.current === undefined;
  }

  private read(chunk: Buffer): void {
    this.buffered = this.buffered ? Buffer.concat([this.buffered, chunk]) : chunk;
    if (this.current) {
      // Pipelined: wait for the answer in progress (and stop reading if the client sends a lot).
      if (this.buffered.length > MAX_HEAD) this.socket.pause();
      return;
    }
    this.next();
  }

  /** Serve the next whole request in the buffer, or hand the connection to node's server. */
  private next(): void {
    const buf = this.buffered;
    if (!buf || this.current) return;
    const end = buf.indexOf('\r\n\r\n', 0, 'latin1');
    if (end < 0 || end > MAX_HEAD) return this.handOff();
    const req = parseHead(buf.toString('latin1', 0, end), this.socket);
    if (!req) return this.handOff();
    const res = new FastResponse(this, req.method === 'HEAD', req.close);
    this.current = res;
    // What follows this request (pipelined ones) stays buffered; set before the handler, which may answer at once.
    this.buffered = buf.length > end + 4 ? buf.subarray(end + 4) : undefined;
    if (!this.front.handler(req.request, res)) {
      this.current = undefined;
      this.buffered = buf;
      this.handOff();
    }
  }

  /** The answer in progress ended: close, or go on with pipelined requests, or wait idle. */
  answered(res: FastResponse): void {
    if (this.current !== res) return;
    this.current = undefined;
    if (res.closeAfter) {
      this.socket.end();
      return;
    }
    this.idleSince = performance.now();
    if (this.buffered) {
      this.socket.resume();
      // Not from inside the answer's `end`: its caller may still be unwinding.
      queueMicrotask(() => this.next());
    }
  }

  /** node's HTTP server takes the connection from here, with what was read and not served. */
  private handOff(): void {
    const { socket } = this;
    socket.pause();
    socket.off('data', this.onData);
    socket.off('end', this.onEnd);
    socket.off('close', this.onClose);
    socket.off('error', this.onError);
    this.front.forget(this);
    if (this.buffered) socket.unshift(this.buffered);
    this.buffered = undefined;
    this.front.httpServer.emit('connection', socket);
    socket.resume();
  }
}

interface ParsedHead {
  request: FastRequest;
  method: string;
  close: boolean;
}

/** The request head, if the fast path takes it: strict grammar, no body, nothing that needs node's server. */
function parseHead(text: string, socket: Socket): ParsedHead | undefined {
  const start = startLine(text);
  const m = REQUEST_LINE.exec(start.line);
  if (!m) return undefined;
  const raw: string[] = [];
  if (!parseFields(text, start.fields, raw)) return undefined;
  let hosts = 0;
  let close = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    switch (name.length) {
      case 4:
        if (name.toLowerCase() === 'host') hosts++;
        break;
      case 6:
        if (name.toLowerCase() === 'expect') return undefined;
        break;
      case 7:
        if (name.toLowerCase() === 'upgrade') return undefined;
        break;
      case 10:
        if (name.toLowerCase() === 'connection') {
          const v = value.toLowerCase();
          if (v === 'close') close = true;
          else if (v !== 'keep-alive') return undefined;
        }
        break;
      case 14:
        if (name.toLowerCase() === 'content-length') return undefined;
        break;
      case 17:
        if (name.toLowerCase() === 'transfer-encoding') return undefined;
        break;
    }
  }
  if (hosts !== 1) return undefined;
  const method = m[1] as string;
  return { request: new FastRequest(method, m[2] as string, raw, socket), method, close };
}

/** The fast listener of one node HTTP server. */
export class FastFront {
  readonly server: NetServer;
  private readonly conns = new Set<ClientConnection>();
  private sweeper: NodeJS.Timeout | undefined;
  /** The `Keep-Alive` line of kept connections' answers. */
  readonly keepAliveHeader: string;

  constructor(
    readonly httpServer: Server,
    readonly handler: FastHandler,
    private readonly keepAliveMs: number,
  ) {
    this.keepAliveHeader = `keep-alive: timeout=${Math.floor(keepAliveMs / 1000)}\r\n`;
    this.server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.accept(socket));
  }

  /** Serve a connection (from this listener, or from the PROXY protocol front, paused). */
  accept(socket: Socket): void {
    this.conns.add(new ClientConnection(socket, this));
    this.sweeper ??= setInterval(() => this.sweep(), 1000).unref();
    socket.resume();
  }

  forget(conn: ClientConnection): void {
    this.conns.delete(conn);
  }

  /** Close the connections with nothing in flight (a draining router); busy ones close after their answer. */
  closeIdle(): void {
    for (const conn of this.conns) if (conn.idle) conn.socket.end();
  }

  closeAll(): void {
    clearInterval(this.sweeper);
    for (const conn of this.conns) conn.socket.destroy();
  }

  /** The keep-alive timeout of idle client connections, checked once a second. */
  private sweep(): void {
    const now = performance.now();
    for (const conn of this.conns) if (conn.idle && now - conn.idleSince > this.keepAliveMs) conn.socket.destroy();
  }
}
