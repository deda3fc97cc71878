import { loadOrCreateSelfSigned, makeSelfSigned, type TlsCredentials } from '../common/tls/self-signed.js';

/** A PEM certificate (chain) and its private key. */
export type CertificatePair = TlsCredentials;

/**
 * A self-signed certificate for `names` (e.g. `['*.flynn.local', 'flynn.local', 'localhost']`; the
 * first is its CN), made by common/tls (node's crypto for the key, the `openssl` CLI to sign:
 * docs/decisions.md). Fails with FLYNN_ERR_TLS_OPENSSL when `openssl` is missing.
 */
export function selfSignedCertificate(names: string[]): Promise<CertificatePair> {
  return makeSelfSigned({ commonName: names[0] ?? 'localhost', hosts: names });
}

/**
 * The cluster's default certificate kept in `dir` (`router.crt`, `router.key` mode 0600): read if
 * it is there, else made once and written, so that clients that pinned or trusted it keep working
 * across restarts.
 */
export async function clusterCertificate(dir: string, names: string[]): Promise<CertificatePair> {
  const { cert, key } = await loadOrCreateSelfSigned({ dir, name: 'router', commonName: names[0] ?? 'localhost', hosts: names });
  return { cert, key };
}
