import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { writeFileAtomic } from '../common/atomic-file.js';
import { RouterErrorCodes, RouterInputError } from './errors.js';

/** A PEM certificate (chain) and its private key. */
export interface CertificatePair {
  cert: string;
  key: string;
}

const run = promisify(execFile);

/**
 * A self-signed certificate (ECDSA P-256, 10 years) for `names` (e.g. `['*.flynn.local',
 * 'flynn.local', 'localhost']`), made by the `openssl` CLI: node's crypto makes keys but not X.509
 * certificates, and OpenSSL is on every Debian/Docker base image, so this needs no dependency
 * (docs/decisions.md). Fails with FLYNN_ERR_ROUTER_INVALID_OPTIONS when `openssl` is missing.
 */
export async function selfSignedCertificate(names: string[]): Promise<CertificatePair> {
  const dir = await mkdtemp(join(tmpdir(), 'flynn-router-cert-'));
  try {
    const san = names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
    const keyFile = join(dir, 'key.pem');
    const certFile = join(dir, 'cert.pem');
    const args = ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '3650'];
    args.push('-subj', `/CN=${names[0] ?? 'localhost'}`, '-addext', `subjectAltName=${san}`, '-keyout', keyFile, '-out', certFile);
    try {
      await run('openssl', args, { timeout: 30_000 });
    } catch (err) {
      throw new RouterInputError(RouterErrorCodes.INVALID_OPTIONS, `cannot make the default certificate with openssl (apt-get install -y openssl, or pass defaultCertificate): ${(err as Error).message.split('\n')[0]}`, { field: 'defaultCertificate', cause: err });
    }
    return { cert: await readFile(certFile, 'utf8'), key: await readFile(keyFile, 'utf8') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The cluster's default certificate kept in `dir` (`cert.pem`, `key.pem` mode 0600): read if it is
 * there, else made once by {@link selfSignedCertificate} and written, so that clients that pinned
 * or trusted it keep working across restarts.
 */
export async function clusterCertificate(dir: string, names: string[]): Promise<CertificatePair> {
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  try {
    return { cert: await readFile(certFile, 'utf8'), key: await readFile(keyFile, 'utf8') };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const pair = await selfSignedCertificate(names);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // The key first: a crash before the certificate is written leaves no pair, and the next start makes one.
  await writeFileAtomic(keyFile, pair.key, { mode: 0o600 });
  await writeFileAtomic(certFile, pair.cert);
  return pair;
}
