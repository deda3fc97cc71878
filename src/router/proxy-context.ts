/**
 * What the proxy's exchanges share (the context, the in-flight count, the router's own answers and
 * the client's response headers), apart from the request handlers that use the exchanges, so no
 * exchange imports the handler module.
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from '../common/logger.js';
import type { Backend, ServicePool } from './backends.js';
import { responseHeaders } from './headers.js';
import type { OutlierDetector } from './outlier.js';
import type { HttpRouteTable } from './route-table.js';
import type { StickySigner } from './sticky.js';
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

/** The part of node's `ServerResponse` the proxy writes to: also h1-front.ts's `FastResponse`. */
export interface ClientResponse {
  readonly headersSent: boolean;
  readonly destroyed: boolean;
  writeHead(status: number, headers: string[] | Record<string, string | number>): unknown;
  write(chunk: Buffer): boolean;
  end(chunk?: Buffer | string): unknown;
  destroy(): unknown;
  once(event: 'close' | 'drain', listener: () => void): unknown;
}

/** A short plain-text answer from the router itself (404, 502, 503...). */
export function reply(res: ClientResponse, status: number, message: string): void {
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

/** Response headers for the client, with the sticky cookie and the drain `Connection: close` added. */
export function clientHeaders(ctx: ProxyContext, route: HttpRoute, backend: Backend, pinned: boolean, raw: ReadonlyArray<Buffer | string>, https: boolean, h2: boolean): string[] {
  const out = responseHeaders(raw);
  if (route.sticky && !pinned) out.push('set-cookie', `${ctx.stickyCookie}=${ctx.signer.sign(route.id, backend.addr)}; Path=/; HttpOnly${https ? '; Secure' : ''}`);
  // HTTP/2 has no `Connection` header: its sessions are closed with GOAWAY instead.
  if (ctx.inFlight.draining && !h2) out.push('connection', 'close');
  return out;
}
