/**
 * Fetch one commit of a git URL into a bare repository and hand its tree out as `git archive`.
 * Nothing is checked out, so no hook, filter, LFS smudge or submodule of the fetched repository
 * ever runs; git reads no system or user config (no credential helpers of the platform's user),
 * never prompts, and speaks only the allowed transports (docs/security.md).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { PassThrough, type Readable } from 'node:stream';
import type { CheckedGitSource, GitScheme } from './git-url.js';
import { TaffyErrorCodes, TaffyFetchError, TaffyRefNotFoundError } from './errors.js';

export interface FetchOptions {
  /** An empty directory; becomes the bare repository. */
  dir: string;
  /** Transports git may use (the source's own scheme must be among them). */
  schemes: readonly GitScheme[];
  /** Environment passed on to git besides what is set here (PATH, HOME, proxy variables). */
  env: Record<string, string>;
  signal: AbortSignal;
}

/** The environment git runs with: none of the host's or user's config, no prompts, ssh in batch mode. */
function gitEnv(env: Record<string, string>): Record<string, string> {
  return {
    ...env,
    LC_ALL: 'C',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_TERMINAL_PROMPT: '0',
    GIT_ASKPASS: '',
    SSH_ASKPASS: '',
    GIT_SSH_COMMAND: 'ssh -o BatchMode=yes -o ConnectTimeout=20',
  };
}

/** `-c` settings of every git call: only the allowed transports, no hooks, objects checked. */
function gitConfig(schemes: readonly GitScheme[]): string[] {
  const settings = ['protocol.allow=never', ...schemes.map((s) => `protocol.${s}.allow=always`), 'core.hooksPath=/dev/null', 'transfer.fsckObjects=true', 'fetch.recurseSubmodules=false', 'credential.helper='];
  return settings.flatMap((s) => ['-c', s]);
}

interface GitResult {
  code: number;
  stdout: string;
  stderr: string;
}

function git(args: string[], options: FetchOptions): Promise<GitResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', [...gitConfig(options.schemes), ...args], { env: gitEnv(options.env), stdio: ['ignore', 'pipe', 'pipe'], signal: options.signal });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr = (stderr + c).slice(-8000)));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

const HEX_RE = /^[0-9a-f]{7,40}$/i;
/** What git says when the server has no such ref, or will not serve a commit by its id. */
const REF_MISSING_RE = /couldn't find remote ref|not our ref|unadvertised object|Remote branch .* not found/i;

/**
 * Fetch the source's ref (the default branch without one) into `options.dir`, shallow where git
 * allows it: a branch or tag always, a commit when the server serves it by id (else the whole
 * history is fetched to find it). Resolves with the commit id; throws a one-line
 * {@link TaffyFetchError} or {@link TaffyRefNotFoundError}.
 */
export async function fetchGitSource(source: CheckedGitSource, options: FetchOptions, output: (line: string) => void): Promise<string> {
  const init = await git(['init', '--quiet', '--bare', '--template=', options.dir], options);
  if (init.code !== 0) throw new TaffyFetchError(TaffyErrorCodes.FETCH_FAILED, `git init failed: ${lastLine(init.stderr)}`);
  const inRepo = (args: string[]) => git(['--git-dir', options.dir, ...args], options);
  const ref = source.ref ?? 'HEAD';
  let fetched = await inRepo(['fetch', '--quiet', '--no-tags', '--depth', '1', '--', source.url, ref]);
  if (fetched.code !== 0 && source.ref !== undefined && HEX_RE.test(source.ref) && REF_MISSING_RE.test(fetched.stderr)) {
    output(`-----> ${source.ref} is not served by id: fetching the whole history to find it`);
    fetched = await inRepo(['fetch', '--quiet', '--no-tags', '--', source.url, '+refs/heads/*:refs/remotes/origin/*', '+refs/tags/*:refs/tags/*']);
    if (fetched.code === 0) {
      const found = await inRepo(['rev-parse', '--verify', '--quiet', '--end-of-options', `${source.ref}^{commit}`]);
      if (found.code !== 0) throw new TaffyRefNotFoundError(`no branch, tag or commit ${JSON.stringify(source.ref)} in ${source.display}`);
      return found.stdout.trim();
    }
  }
  if (fetched.code !== 0) throw fetchError(fetched.stderr, source);
  const rev = await inRepo(['rev-parse', '--verify', 'FETCH_HEAD^{commit}']);
  if (rev.code !== 0) throw new TaffyRefNotFoundError(`${JSON.stringify(source.ref)} in ${source.display} is not a commit`);
  return rev.stdout.trim();
}

/** The tree of `rev` as a tar stream (what a push hands to the platform), and the git process making it. */
export function archiveTree(rev: string, options: FetchOptions): { archive: Readable; child: ChildProcess } {
  const child = spawn('git', [...gitConfig(options.schemes), '--git-dir', options.dir, 'archive', '--format=tar', rev], { env: gitEnv(options.env), stdio: ['ignore', 'pipe', 'ignore'], signal: options.signal });
  // Read at once: node drains (and drops) a child's unread stdout when it exits, and the platform
  // may start reading only after a few awaits.
  return { archive: child.stdout.pipe(new PassThrough()), child };
}

/** Git's reason, in one line: ssh's own complaint, else the last `fatal:` line with its continuation. */
function lastLine(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  const ssh = lines.find((l) => l.startsWith('ssh: '));
  if (ssh) return ssh;
  const at = lines.map((l) => l.startsWith('fatal:')).lastIndexOf(true);
  if (at < 0) return lines.pop() ?? 'no output';
  const fatal = lines[at] as string;
  const next = lines[at + 1];
  return fatal.endsWith(':') && next !== undefined ? `${fatal} ${next}` : fatal;
}

/** One line saying why git could not fetch, from what git printed (run with LC_ALL=C). */
function fetchError(stderr: string, source: CheckedGitSource): Error {
  const said = lastLine(stderr).replace(/^fatal: /, '');
  const url = source.display;
  if (REF_MISSING_RE.test(stderr)) {
    return new TaffyRefNotFoundError(`no branch, tag or commit ${JSON.stringify(source.ref ?? 'HEAD')} in ${url}`);
  }
  if (/could not read (Username|Password)|terminal prompts disabled|Authentication failed|Permission denied \(publickey|The requested URL returned error: 40[13]/i.test(stderr)) {
    return new TaffyFetchError(TaffyErrorCodes.NEEDS_CREDENTIALS, `${url} asks for credentials (a private repository?), and the cluster has none for it: use a URL it can read`);
  }
  if (/Host key verification failed/i.test(stderr)) {
    return new TaffyFetchError(TaffyErrorCodes.NEEDS_CREDENTIALS, `the ssh host key of ${url} is not known to the platform: add it to the platform user's ~/.ssh/known_hosts`);
  }
  if (/Could not resolve host|Connection refused|Failed to connect|unable to connect|timed out|Network is unreachable|Could not read from remote repository|unable to access/i.test(stderr) && !/not found|does not appear to be a git repository|returned error: 404/i.test(stderr)) {
    return new TaffyFetchError(TaffyErrorCodes.UNREACHABLE, `cannot reach ${url}: ${said}`, { retryable: true });
  }
  if (/not found|does not appear to be a git repository|returned error: 404|not a git repository|no such repository/i.test(stderr)) {
    return new TaffyFetchError(TaffyErrorCodes.NO_REPOSITORY, `no git repository at ${url}`);
  }
  return new TaffyFetchError(TaffyErrorCodes.FETCH_FAILED, `fetching ${url} failed: ${said}`);
}
