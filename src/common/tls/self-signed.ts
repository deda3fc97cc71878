/**
 * A self-signed TLS certificate made once and kept in a directory (the controller's, and the
 * router's default one). The key is made by node's crypto (written 0600 before anything else can
 * read it); the X.509 certificate is signed by the `openssl` CLI, because node cannot make one and
 * a dependency for it would sit on the platform's trust path (docs/decisions.md).
 */
import { execFile } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { writeFileAtomic } from '../atomic-file.js';
import { FlynnError, InvalidInputError } from '../errors.js';
import { certPin } from './pin.js';

/** A PEM certificate (chain) and its PEM private key. */
export interface TlsCredentials {
  cert: string;
  key: string;
}

export interface SelfSignedOptions {
  /** Where `<name>.crt` and `<name>.key` (0600) are kept. Created 0700 when missing. */
  dir: string;
  /** File name stem. Default `tls`. */
  name?: string;
  /** Subject CN. Default `flynn-ts`. */
  commonName?: string;
  /** Subject alternative names (IP addresses or DNS names). Default `['127.0.0.1', 'localhost']`; both are always added. */
  hosts?: string[];
  /** Validity, in days. Default 3650 (the pin, not the expiry, is what clients trust). */
  days?: number;
}

export interface SelfSigned extends TlsCredentials {
  /** Base64 SHA-256 of the certificate's DER, what `flynn server-add -p` takes. */
  pin: string;
  /** Whether it was made now (false: loaded from `dir`). */
  created: boolean;
  certFile: string;
  keyFile: string;
}

export const SELF_SIGNED_DEFAULTS = Object.freeze({ name: 'tls', commonName: 'flynn-ts', days: 3650 });

/**
 * The certificate kept in `options.dir`, made (and kept) when there is none.
 * @throws {InvalidInputError} `FLYNN_ERR_TLS_INVALID` when a kept certificate or its key is unusable (torn, edited, not a pair): never replaced silently, since clients pin it.
 */
export async function loadOrCreateSelfSigned(options: SelfSignedOptions): Promise<SelfSigned> {
  const name = options.name ?? SELF_SIGNED_DEFAULTS.name;
  const certFile = join(options.dir, `${name}.crt`);
  const keyFile = join(options.dir, `${name}.key`);
  const kept = await readPair(certFile, keyFile);
  if (kept !== undefined) return { ...kept, pin: pinOf(kept.cert), created: false, certFile, keyFile };

  const made = await makeSelfSigned(options);
  await mkdir(options.dir, { recursive: true, mode: 0o700 });
  // The key first: a crash before the certificate is written leaves no pair, and the next start makes one.
  await writeFileAtomic(keyFile, made.key, { mode: 0o600 });
  await writeFileAtomic(certFile, made.cert);
  return { ...made, pin: pinOf(made.cert), created: true, certFile, keyFile };
}

/**
 * A new self-signed certificate (ECDSA P-256) for `hosts` plus 127.0.0.1 and localhost, kept
 * nowhere: its key lives in a private temp dir only while `openssl` signs the certificate.
 */
export async function makeSelfSigned(options: Omit<SelfSignedOptions, 'dir' | 'name'> = {}): Promise<TlsCredentials> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const key = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  const dir = await mkdtemp(join(tmpdir(), 'flynn-tls-')); // mode 0700
  try {
    const keyFile = join(dir, 'key.pem');
    await writeFile(keyFile, key, { mode: 0o600 });
    const hosts = [...new Set(['127.0.0.1', 'localhost', ...(options.hosts ?? [])])].filter((h) => h !== '' && h !== '0.0.0.0' && h !== '::');
    const san = hosts.map((h) => (isIP(h) ? `IP:${h}` : `DNS:${h}`)).join(',');
    const cert = await openssl(['req', '-new', '-x509', '-key', keyFile, '-sha256', '-days', String(options.days ?? SELF_SIGNED_DEFAULTS.days), '-subj', `/CN=${options.commonName ?? SELF_SIGNED_DEFAULTS.commonName}`, '-addext', `subjectAltName=${san}`]);
    return { cert, key };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Base64 SHA-256 of the first certificate of a PEM chain. */
export function pinOf(certPem: string): string {
  return certPin(new X509Certificate(certPem).raw);
}

/**
 * Check that a user-supplied pair is usable: a certificate, a private key, and the key is the
 * certificate's. Throws a one-line error naming `what` (e.g. `--tls-cert/--tls-key`).
 */
export function checkTlsPair(pair: TlsCredentials, what: string): { pin: string } {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(pair.cert);
  } catch (err) {
    throw new InvalidInputError('FLYNN_ERR_TLS_INVALID', `${what}: the certificate is not a PEM X.509 certificate (${(err as Error).message})`);
  }
  let matches: boolean;
  try {
    matches = x509.checkPrivateKey(createPrivateKey(pair.key));
  } catch (err) {
    throw new InvalidInputError('FLYNN_ERR_TLS_INVALID', `${what}: the key is not a PEM private key (${(err as Error).message})`);
  }
  if (!matches) throw new InvalidInputError('FLYNN_ERR_TLS_INVALID', `${what}: the key is not the certificate's`);
  return { pin: certPin(x509.raw) };
}

/**
 * The kept pair, or undefined when there is no certificate (never made, or a crash came between
 * the key and the certificate: nobody can have pinned it). A certificate that is there is the
 * cluster's identity (clients pin it): when it or its key is unusable, fail with one line instead
 * of making a new one behind the clients' back.
 */
async function readPair(certFile: string, keyFile: string): Promise<TlsCredentials | undefined> {
  const [cert, key] = await Promise.all([readFile(certFile, 'utf8').catch(() => undefined), readFile(keyFile, 'utf8').catch(() => undefined)]);
  if (cert === undefined) return undefined;
  try {
    checkTlsPair({ cert, key: key ?? '' }, `${certFile} (key ${keyFile})`);
  } catch (err) {
    const fix = `restore them from a copy, or delete both to make a new certificate (clients that pinned the old one must then pin the new one)`;
    throw new InvalidInputError('FLYNN_ERR_TLS_INVALID', `${(err as Error).message}${key === undefined ? ' (the key file is missing)' : ' (truncated or edited?)'}: ${fix}`, { detail: { certFile, keyFile } });
  }
  await chmod(keyFile, 0o600);
  return { cert, key: key as string };
}

function openssl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) {
        const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
        reject(new FlynnError('FLYNN_ERR_TLS_OPENSSL', 'internal', missing ? 'cannot make a TLS certificate: the openssl CLI is not installed (install it, or give a certificate and key)' : `openssl failed: ${stderr.trim() || err.message}`));
      } else resolve(stdout);
    });
  });
}
