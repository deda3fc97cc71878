import type { IncomingMessage, ServerResponse } from 'node:http';
import { createSecureServer, type Http2SecureServer, type ServerHttp2Session } from 'node:http2';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { SecureContext, TLSSocket } from 'node:tls';
import type { Logger } from '../common/logger.js';
import type { CertificatePair } from './certificate.js';
import { readServerName } from './client-hello.js';

export interface HttpsListenerOptions {
  /** Served to clients without SNI and for names no route has a certificate for. */
  defaultCertificate: CertificatePair;
  /** The route certificate for an SNI name, if any. */
  certificate(servername: string): SecureContext | undefined;
  defaultContext: SecureContext;
  /** Read by node's HTTP/1 connection handling of the TLS servers (as set on an `http.Server`; the http2 server has no options for them). */
  http1: Http1Settings;
  /** Longest time from accepting a connection to the end of its TLS handshake (ClientHello read included). */
  handshakeTimeoutMs: number;
  logger: Logger;
  onRequest(req: IncomingMessage, res: ServerResponse): void;
  onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

/** node's HTTP/1 server settings (`http.ServerOptions` names) that the router sets. */
export interface Http1Settings {
  keepAliveTimeout: number;
  headersTimeout: number;
  requestTimeout: number;
  connectionsCheckingInterval: number;
}

/** Events of the SNI server that the listener's handlers (and the engine's observers) take from {@link HttpsListener.server}. */
const FORWARDED_EVENTS = ['request', 'upgrade', 'clientError'] as const;

/**
 * The HTTPS listener: one TLS port that speaks HTTP/2 to clients that offer it by ALPN and
 * HTTP/1.1 (with Upgrades) to the others, through node's http2 compatibility API, so that both go
 * through the same request handler. Certificates are chosen by SNI.
 *
 * Two TLS servers sit behind one TCP listener, which reads the ClientHello's server name first:
 * a hello with SNI goes to a server whose initial context holds no certificate, and gets its
 * route's (or the default) certificate from the SNI callback; a hello without SNI goes to the
 * server that holds the default certificate. One server for both does not work: node installs an
 * SNI context's certificate beside the initial one (OpenSSL keeps one per key type), so a TLS 1.3
 * client that prefers ECDSA got an EC default certificate instead of a route's RSA one.
 */
export class HttpsListener {
  /** The TCP listener (the engine listens on it). */
  readonly front: NetServer;
  /** Where requests, Upgrades and client errors of both TLS servers are emitted (handlers go here). */
  readonly server: Http2SecureServer;
  private readonly sni: Http2SecureServer;
  private readonly handshakeTimeoutMs: number;
  private readonly sessions = new Set<ServerHttp2Session>();
  /** Connections being read (until a TLS server takes them) and TLS connections. */
  private readonly sockets = new Set<Socket>();

  constructor(o: HttpsListenerOptions) {
    const settings = { allowHTTP1: true, handshakeTimeout: o.handshakeTimeoutMs };
    this.handshakeTimeoutMs = o.handshakeTimeoutMs;
    this.server = createSecureServer({ ...settings, cert: o.defaultCertificate.cert, key: o.defaultCertificate.key });
    this.sni = createSecureServer({ ...settings, SNICallback: (name, cb) => cb(null, o.certificate(name) ?? o.defaultContext) });
    // One ticket key for both, so a session resumes whichever server takes the connection.
    this.sni.setTicketKeys(this.server.getTicketKeys());
    for (const server of [this.server, this.sni]) {
      Object.assign(server, o.http1);
      server.on('session', (session: ServerHttp2Session) => {
        this.sessions.add(session);
        session.once('close', () => this.sessions.delete(session));
      });
      server.on('secureConnection', (socket: TLSSocket) => this.track(socket));
      server.on('tlsClientError', (err) => o.logger.debug('tls handshake failed', { error: err.message }));
    }
    for (const event of FORWARDED_EVENTS) this.sni.on(event, (...args: unknown[]) => this.server.emit(event, ...args));
    // The compatibility API's request and response mirror node:http's closely enough for the proxy (headers as flat arrays included).
    this.server.on('request', o.onRequest as unknown as (req: unknown, res: unknown) => void);
    this.server.on('upgrade', o.onUpgrade);
    // The engine closes `server` (which stops its timers); the SNI server goes with it.
    this.server.once('close', () => this.sni.close());
    this.front = createNetServer((socket) => this.accept(socket));
    // node starts the HTTP/1 head and request timers of an http2 server with allowHTTP1 when it listens; these two never do themselves.
    this.front.on('listening', () => {
      this.server.emit('listening');
      this.sni.emit('listening');
    });
  }

  /** Read the ClientHello's server name, then hand the connection, bytes read included, to the TLS server for it. */
  private accept(socket: Socket): void {
    const untrack = this.track(socket);
    let buf: Buffer = Buffer.alloc(0);
    // A client that never finishes its hello is cut (the TLS server's handshakeTimeout takes over once it has one).
    const timer = setTimeout(() => socket.destroy(), this.handshakeTimeoutMs);
    const onData = (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const scan = readServerName(buf);
      if (!scan.done) return;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      untrack();
      // Paused, with the bytes put back: the TLS socket reads them out of the stream's buffer, then reads the handle itself.
      socket.pause();
      socket.unshift(buf);
      (scan.servername ? this.sni : this.server).emit('connection', socket);
    };
    const onError = () => socket.destroy();
    socket.once('close', () => clearTimeout(timer));
    socket.on('data', onData);
    socket.on('error', onError);
  }

  private track(socket: Socket): () => void {
    const forget = () => this.sockets.delete(socket);
    this.sockets.add(socket);
    socket.once('close', forget);
    return () => (forget(), socket.off('close', forget));
  }

  /** Ask HTTP/2 clients to go away once their streams end (HTTP/1.1 ones get `Connection: close` on their answers). */
  closeIdle(): void {
    for (const session of this.sessions) session.close();
  }

  /** Cut every connection left. */
  closeAll(): void {
    for (const session of this.sessions) session.destroy();
    for (const socket of this.sockets) socket.destroy();
  }
}
