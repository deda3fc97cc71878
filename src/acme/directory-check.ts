import { get as httpGet } from 'node:http';
import { get as httpsGet } from 'node:https';

/** What a failed connection to the CA means, in words. */
const CAUSES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'its host name does not resolve',
  EAI_AGAIN: 'its host name does not resolve (DNS did not answer)',
  ECONNRESET: 'the connection was reset',
  ETIMEDOUT: 'the connection timed out',
  ECONNABORTED: 'no answer in time (directoryTimeoutMs)',
  EHOSTUNREACH: 'its host cannot be reached',
  ENETUNREACH: 'its network cannot be reached',
  CERT_HAS_EXPIRED: "its TLS certificate has expired",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'its TLS certificate is not trusted (a private CA needs its bundle as ca)',
  SELF_SIGNED_CERT_IN_CHAIN: 'its TLS certificate is not trusted (a private CA needs its bundle as ca)',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'its TLS certificate is self-signed (a private CA needs its bundle as ca)',
};

/**
 * Fetch the ACME directory once, within `timeoutMs`, before an order: a CA that cannot be reached
 * is then said in one line within seconds (`cannot reach the ACME directory URL: connection
 * refused`), rather than after acme-client's retries (about 75 s) as its own error (a TypeError
 * when the request got no answer). `ca`: the directory's trusted CA bundle, as the client uses.
 */
export function reachDirectory(url: string, timeoutMs: number, ca?: string): Promise<void> {
  const get = url.startsWith('https:') ? httpsGet : httpGet;
  return new Promise<void>((resolve, reject) => {
    const req = get(url, { timeout: timeoutMs, agent: false, ...(ca ? { ca } : {}) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        let directory: { newNonce?: unknown } | undefined;
        try {
          directory = JSON.parse(body) as { newNonce?: unknown };
        } catch {
          directory = undefined;
        }
        if (res.statusCode === 200 && typeof directory?.newNonce === 'string') resolve();
        else reject(new Error(`${url} is not an ACME directory (HTTP ${res.statusCode}${res.statusCode === 200 ? ' without newNonce' : ''})`));
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ECONNABORTED' })));
    req.on('error', (err: Error & { code?: string }) => reject(new Error(`cannot reach the ACME directory ${url}: ${(err.code && CAUSES[err.code]) ?? err.message}`)));
  });
}
