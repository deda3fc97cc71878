import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import ssh2 from 'ssh2';
import { GitErrorCodes } from './errors.js';
import { writeFileAtomic } from '../common/atomic-file.js';
import { InvalidInputError } from '../common/errors.js';

const { utils } = ssh2;

/** `SHA256:<base64 without padding>` of an SSH wire-format public key, as OpenSSH prints it. */
export function fingerprintOf(blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

/** Fingerprint of an `authorized_keys`-style line (`ssh-ed25519 AAAA... comment`) or a private key. */
export function fingerprintOfKey(key: string | Buffer): string {
  const parsed = utils.parseKey(key);
  if (parsed instanceof Error) throw new InvalidInputError(GitErrorCodes.INVALID_HOST_KEY, `not an SSH key: ${parsed.message}`, { field: 'key' });
  const one = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!one) throw new InvalidInputError(GitErrorCodes.INVALID_HOST_KEY, 'not an SSH key', { field: 'key' });
  return fingerprintOf(one.getPublicSSH());
}

/** A new RSA private key in PEM (PKCS#1), a format both ssh2 and OpenSSH read. */
export function generatePrivateKey(): string {
  const { privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 3072,
    publicKeyEncoding: { type: 'pkcs1', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });
  return privateKey;
}

/** The `ssh-rsa AAAA...` public line of a private key, for authorized_keys / `flynn key-add`. */
export function publicKeyLine(privateKey: string | Buffer, comment = ''): string {
  const parsed = utils.parseKey(privateKey);
  if (parsed instanceof Error || Array.isArray(parsed)) throw new InvalidInputError(GitErrorCodes.INVALID_HOST_KEY, 'not a single SSH private key', { field: 'key' });
  return `${parsed.type} ${parsed.getPublicSSH().toString('base64')}${comment ? ' ' + comment : ''}`;
}

/**
 * Load the host key kept at `path`, or generate and keep one (mode 0600) the first time, so the
 * server's fingerprint stays the same across restarts and `flynn server-add` pins can trust it.
 * The key is written atomically (a crash leaves no key or the whole key), and a kept file that is
 * not a private key (truncated, edited) fails with one line naming it instead of being replaced:
 * a new key would break every pinned fingerprint.
 */
export async function loadOrCreateHostKey(path: string): Promise<string> {
  let kept: string | undefined;
  try {
    kept = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (kept === undefined) {
    await mkdir(dirname(path), { recursive: true });
    // exclusive: of two starts racing on one data dir, both end up with the first key written.
    await writeFileAtomic(path, generatePrivateKey(), { mode: 0o600, exclusive: true }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
    kept = await readFile(path, 'utf8');
  }
  const parsed = utils.parseKey(kept);
  if (parsed instanceof Error || Array.isArray(parsed) || !parsed.isPrivateKey()) {
    throw new InvalidInputError(
      GitErrorCodes.INVALID_HOST_KEY,
      `the SSH host key ${path} is not a private key (truncated or edited?): restore it from a backup, or delete it to make a new one (clients that pinned the old fingerprint must then pin the new one)`,
      { field: 'hostKey', detail: { file: path } },
    );
  }
  return kept;
}
