/** What a TLS listener serves, for tests of certificates a router picks up after the fact (ACME orders, renewals), with `vi.waitFor`. */
import { connect, type PeerCertificate } from 'node:tls';

/** The certificate served on 127.0.0.1:`port` for `servername`, and whether it verifies against `ca`. */
export function served(port: number, servername: string, ca: string, host = '127.0.0.1'): Promise<{ cert: PeerCertificate; authorized: boolean; error?: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, servername, ca, rejectUnauthorized: false }, () => {
      resolve({ cert: socket.getPeerCertificate(true), authorized: socket.authorized, ...(socket.authorizationError ? { error: String(socket.authorizationError) } : {}) });
      socket.end();
    });
    socket.on('error', reject);
  });
}
