/**
 * Pinning the git receiver's SSH host key, as `flynn server-add --git-fingerprint` does: fetch the
 * key the server offers, accept it only when its fingerprint is the one given, and keep it in a
 * known_hosts file of the CLI's own that `flynn create` points the repository's ssh at. OpenSSH
 * reads `~/.ssh` from the passwd entry, not `$HOME`, so the CLI cannot rely on the user's file.
 */
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import ssh2 from 'ssh2';
import { writeFileAtomic } from '../common/atomic-file.js';
import { fingerprintOf } from '../git/keys.js';
import { CliError } from './errors.js';

/**
 * `$FLYNN_KNOWN_HOSTS`, else `.flynn/known_hosts` beside the config: next to `$FLYNNRC` when that
 * moves the config, else in `~` (`$HOME` first). So a separate config keeps its pins separate too.
 */
export function knownHostsPath(env: NodeJS.ProcessEnv): string {
  if (env.FLYNN_KNOWN_HOSTS) return env.FLYNN_KNOWN_HOSTS;
  return join(env.FLYNNRC ? dirname(env.FLYNNRC) : env.HOME || homedir(), '.flynn', 'known_hosts');
}

/** `host:port` split; the port defaults to 22. */
export function splitHostPort(gitHost: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(gitHost.trim());
  const port = m?.[2] === undefined ? 22 : Number(m[2]);
  if (!m?.[1] || !Number.isInteger(port) || port < 1 || port > 65535) throw new CliError(`git host ${JSON.stringify(gitHost)} is not host[:port]`, { usage: true });
  return { host: m[1], port };
}

/** The host part of a known_hosts line: `host` on port 22, else `[host]:port` (as OpenSSH writes it). */
export function knownHostsName(gitHost: string): string {
  const { host, port } = splitHostPort(gitHost);
  return port === 22 ? host : `[${host}]:${port}`;
}

/** The host key (SSH wire format) the server at `gitHost` offers. */
export function fetchHostKey(gitHost: string, timeoutMs = 10_000): Promise<Buffer> {
  const { host, port } = splitHostPort(gitHost);
  return new Promise((resolve, reject) => {
    const conn = new ssh2.Client();
    let key: Buffer | undefined;
    const done = (err?: Error) => {
      conn.end();
      if (key) resolve(key);
      else reject(new CliError(`cannot read the SSH host key of ${gitHost}: ${err?.message ?? 'connection closed'}`));
    };
    conn.on('error', (err) => done(err));
    conn.on('close', () => done());
    conn.on('ready', () => done());
    conn.connect({
      host,
      port,
      username: 'git',
      readyTimeout: timeoutMs,
      // Take the key and refuse to go on: nothing is authenticated, nothing is sent.
      hostVerifier: (raw: Buffer) => {
        key = raw;
        return false;
      },
    });
  });
}

/** `ssh-rsa` from an SSH wire-format key blob (a length-prefixed algorithm name comes first). */
function keyType(blob: Buffer): string {
  const len = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + len).toString('latin1');
}

/**
 * Fetch the host key of `gitHost`, check it has `fingerprint` (`SHA256:...`, as `ssh-keygen -l`
 * prints it) and record it in the CLI's known_hosts file. Returns that file's path and the line.
 */
export async function pinGitHost(env: NodeJS.ProcessEnv, gitHost: string, fingerprint: string): Promise<{ path: string; line: string }> {
  const want = fingerprint.trim().replace(/=+$/, '');
  if (!/^SHA256:[A-Za-z0-9+/]{43}$/.test(want)) throw new CliError(`git fingerprint must be SHA256:<43 base64 chars> (as ssh-keygen -l prints it), got ${JSON.stringify(fingerprint)}`, { usage: true });
  const blob = await fetchHostKey(gitHost);
  const got = fingerprintOf(blob);
  if (got !== want) throw new CliError(`the SSH host key of ${gitHost} is ${got}, not the given ${want}: not trusting it`);
  const path = knownHostsPath(env);
  const line = `${knownHostsName(gitHost)} ${keyType(blob)} ${blob.toString('base64')}`;
  const existing = await readFile(path, 'utf8').catch(() => '');
  if (!existing.split('\n').includes(line)) {
    await mkdir(dirname(path), { recursive: true });
    await appendFile(path, `${line}\n`, { mode: 0o644 });
  }
  return { path, line };
}

/**
 * Remove the keys pinned for `gitHost` from the CLI's known_hosts file, except the line `keep`
 * (the key just pinned when a cluster is replaced). Returns how many lines were removed.
 */
export async function unpinGitHost(env: NodeJS.ProcessEnv, gitHost: string, keep?: string): Promise<number> {
  const path = knownHostsPath(env);
  const existing = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (existing === undefined) return 0;
  const name = knownHostsName(gitHost);
  const lines = existing.split('\n').filter((l) => l !== '');
  const kept = lines.filter((l) => l === keep || l.split(' ')[0] !== name);
  if (kept.length === lines.length) return 0;
  await writeFileAtomic(path, kept.map((l) => `${l}\n`).join(''), { mode: 0o644 });
  return lines.length - kept.length;
}

/** Single-quote for sh (git runs `core.sshCommand` through the shell). */
function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The `core.sshCommand` that makes ssh trust the pinned keys in `knownHosts` besides the user's own
 * known_hosts files (other remotes of the repository are checked as before).
 */
export function pinnedSshCommand(knownHosts: string): string {
  return `ssh -o ${shQuote(`UserKnownHostsFile="${knownHosts}" ~/.ssh/known_hosts ~/.ssh/known_hosts2`)}`;
}
