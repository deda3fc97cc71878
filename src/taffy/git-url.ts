/**
 * Which git URLs and refs Taffy fetches (docs/security.md): https, http, git, ssh (also the
 * scp-like `user@host:path`), and file:// only where the platform allows it. Everything else —
 * plain paths, `ext::` and other transport helpers, anything that starts with `-` — is refused
 * before git runs.
 */
import { TaffySourceError } from './errors.js';

export type GitScheme = 'https' | 'http' | 'git' | 'ssh' | 'file';

/** A git URL and ref that passed {@link checkGitSource}. */
export interface CheckedGitSource {
  url: string;
  /** Branch, tag or commit; undefined for the repository's default branch (its HEAD). */
  ref: string | undefined;
  scheme: GitScheme;
  /** The URL without its password or token, for output and logs. */
  display: string;
}

const REMOTE_SCHEMES = new Set<GitScheme>(['https', 'http', 'git', 'ssh']);
/** `git@github.com:owner/repo.git`: ssh as git spells it without a scheme. */
const SCP_LIKE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*@[A-Za-z0-9][A-Za-z0-9.-]*:(?!\/\/)[^\s]+$/;
/** A branch, tag or commit name git would take (check-ref-format's rules, kept to the safe part). */
const REF_RE = /^(?!-)(?!.*\.\.)(?!.*\/\/)(?!.*@\{)(?!\/)(?!.*[/.]$)(?!.*\.lock$)[A-Za-z0-9._/+-]{1,200}$/;

/**
 * Check a git source before fetching. `allowFile` lets `file://` URLs through (they read the
 * platform host's disk). Throws {@link TaffySourceError} naming what is refused.
 */
export function checkGitSource(source: { url: string; ref?: string | undefined }, options: { allowFile: boolean }): CheckedGitSource {
  const { url } = source;
  const ref = source.ref === undefined || source.ref === '' ? undefined : source.ref;
  if (ref !== undefined && !REF_RE.test(ref)) throw new TaffySourceError('ref', `${JSON.stringify(ref.slice(0, 80))} is not a branch, tag or commit name`);
  if (/[\s\0]/.test(url) || url.startsWith('-') || url.length > 2000) throw new TaffySourceError('url', 'a git URL has no spaces or control characters and does not start with "-"');
  if (SCP_LIKE_RE.test(url) && !url.includes('::')) return { url, ref, scheme: 'ssh', display: url };
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TaffySourceError('url', `${JSON.stringify(url.slice(0, 80))} is not a git URL: give https://, http://, git://, ssh:// or file:// (a local path needs file://)`);
  }
  const scheme = parsed.protocol.replace(/:$/, '') as GitScheme;
  if (scheme === 'file') {
    if (!options.allowFile) throw new TaffySourceError('url', 'file:// URLs are not allowed on this cluster: they read the platform host\'s disk (allow them with the platform\'s allowFileGitUrls)');
    if (parsed.host !== '' && parsed.host !== 'localhost') throw new TaffySourceError('url', 'a file:// URL names no host (file:///path/to/repo)');
    return { url, ref, scheme, display: url };
  }
  if (!REMOTE_SCHEMES.has(scheme)) throw new TaffySourceError('url', `git URLs with ${parsed.protocol}// are not fetched: use https, http, git or ssh`);
  if (parsed.hostname === '') throw new TaffySourceError('url', `${JSON.stringify(url.slice(0, 80))} names no host`);
  // ssh would take `-oProxyCommand=...` as an option (git refuses these too).
  if (parsed.hostname.startsWith('-') || decodeURIComponent(parsed.username).startsWith('-')) throw new TaffySourceError('url', 'a host or user name in a git URL does not start with "-"');
  return { url, ref, scheme, display: withoutSecret(parsed) };
}

/** The URL with its password (an https token) replaced by `***`. */
function withoutSecret(url: URL): string {
  if (url.password === '') return url.href;
  const shown = new URL(url.href);
  shown.password = '***';
  return shown.href;
}

/** Split the CLI's `URL#REF` (the ref after the last `#`). */
export function splitGitSource(arg: string): { url: string; ref?: string } {
  const at = arg.lastIndexOf('#');
  if (at < 0) return { url: arg };
  const ref = arg.slice(at + 1);
  return ref === '' ? { url: arg.slice(0, at) } : { url: arg.slice(0, at), ref };
}
