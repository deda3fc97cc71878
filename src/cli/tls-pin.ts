import { createHash } from 'node:crypto';
import { TLSSocket } from 'node:tls';
import { Agent, buildConnector } from 'undici';

/** Base64 SHA-256 of a DER certificate, the form `server-add -p` takes (padding optional). */
export function certPin(der: Buffer): string {
  return createHash('sha256').update(der).digest('base64');
}

/**
 * An undici Agent that trusts exactly the certificate whose SHA-256 is `pin` (as Flynn's
 * `server-add -p` does for a self-signed controller certificate), instead of the CA chain.
 */
export function pinnedAgent(pin: string): Agent {
  const want = pin.replace(/=+$/, '');
  const base = buildConnector({ rejectUnauthorized: false });
  return new Agent({
    connect: (options, callback) =>
      base(options, (err, socket) => {
        if (err !== null) return callback(err, null);
        if (socket instanceof TLSSocket) {
          const got = certPin(socket.getPeerCertificate().raw).replace(/=+$/, '');
          if (got !== want) {
            socket.destroy();
            return callback(new Error(`TLS pin mismatch: the server's certificate is ${got}=, not the pinned one`), null);
          }
        }
        callback(null, socket);
      }),
  });
}
