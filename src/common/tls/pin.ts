import { createHash } from 'node:crypto';
import { TLSSocket } from 'node:tls';
import { Agent, buildConnector } from 'undici';

/** Base64 SHA-256 of a DER certificate, the form `server-add -p` takes (padding optional). */
export function certPin(der: Buffer): string {
  return createHash('sha256').update(der).digest('base64');
}

/** How a client trusts a server's TLS certificate, instead of (or besides) the system CAs. */
export interface TlsTrust {
  /** Trust exactly the certificate whose base64 SHA-256 is this (`flynn server-add -p`); names and CAs are not checked. */
  pin?: string;
  /** Trust certificates signed by this PEM CA (or the PEM certificate itself, when self-signed); the host name must match. */
  ca?: string | Buffer;
}

/** A keep-alive undici Agent trusting what `trust` says (the system CAs when it says nothing). */
export function trustingAgent(trust: TlsTrust = {}): Agent {
  if (trust.pin !== undefined) return pinnedAgent(trust.pin);
  return new Agent({ keepAliveTimeout: 10_000, ...(trust.ca !== undefined ? { connect: { ca: trust.ca } } : {}) });
}

/**
 * An undici Agent that trusts exactly the certificate whose SHA-256 is `pin` (as Flynn's
 * `server-add -p` does for a self-signed controller certificate), instead of the CA chain.
 */
export function pinnedAgent(pin: string): Agent {
  const want = pin.trim().replace(/=+$/, '');
  // No TLS session resumption: a resumed session shows no certificate to check.
  const base = buildConnector({ rejectUnauthorized: false, maxCachedSessions: 0 });
  return new Agent({
    keepAliveTimeout: 10_000,
    connect: (options, callback) =>
      base(options, (err, socket) => {
        if (err !== null) return callback(err, null);
        if (socket instanceof TLSSocket) {
          const raw = socket.getPeerCertificate().raw as Buffer | undefined; // none once the socket is gone
          const got = raw === undefined ? 'none' : certPin(raw).replace(/=+$/, '');
          if (got !== want) {
            socket.destroy();
            return callback(new Error(`TLS pin mismatch: the server's certificate is ${got}=, not the pinned one`), null);
          }
        }
        callback(null, socket);
      }),
  });
}
