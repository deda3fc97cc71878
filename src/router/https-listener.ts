import type { IncomingMessage, ServerResponse } from 'node:http';
import { createSecureServer, type Http2SecureServer, type ServerHttp2Session } from 'node:http2';
import type { Duplex } from 'node:stream';
import type { SecureContext, TLSSocket } from 'node:tls';
import type { Logger } from '../common/logger.js';
import type { CertificatePair } from './certificate.js';

export interface HttpsListenerOptions {
  /** Served to clients without SNI and for names no route has a certificate for. */
  defaultCertificate: CertificatePair;
  /** The route certificate for an SNI name, if any. */
  certificate(servername: string): SecureContext | undefined;
  defaultContext: SecureContext;
  keepAliveTimeoutMs: number;
  logger: Logger;
  onRequest(req: IncomingMessage, res: ServerResponse): void;
  onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

/**
 * The HTTPS listener: one TLS port that speaks HTTP/2 to clients that offer it by ALPN and
 * HTTP/1.1 (with Upgrades) to the others, through node's http2 compatibility API, so that both go
 * through the same request handler. Certificates are chosen by SNI.
 */
export class HttpsListener {
  readonly server: Http2SecureServer;
  private readonly sessions = new Set<ServerHttp2Session>();
  private readonly sockets = new Set<TLSSocket>();

  constructor(o: HttpsListenerOptions) {
    this.server = createSecureServer({
      allowHTTP1: true,
      cert: o.defaultCertificate.cert,
      key: o.defaultCertificate.key,
      SNICallback: (name, cb) => cb(null, o.certificate(name) ?? o.defaultContext),
    });
    // Read by node's HTTP/1 connection handling of this server (the http2 server has no option for it).
    Object.assign(this.server, { keepAliveTimeout: o.keepAliveTimeoutMs });
    // The compatibility API's request and response mirror node:http's closely enough for the proxy (headers as flat arrays included).
    this.server.on('request', o.onRequest as unknown as (req: unknown, res: unknown) => void);
    this.server.on('upgrade', o.onUpgrade);
    this.server.on('session', (session: ServerHttp2Session) => {
      this.sessions.add(session);
      session.once('close', () => this.sessions.delete(session));
    });
    this.server.on('secureConnection', (socket: TLSSocket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    this.server.on('tlsClientError', (err) => o.logger.debug('tls handshake failed', { error: err.message }));
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
