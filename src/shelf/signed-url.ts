/**
 * Short-lived signed URLs: a read of one blob, allowed until an expiry, without the shelf key.
 * The platform signs a slug's URL each time it starts a job (not when the release is recorded:
 * the URL kept in the store stays plain and is signed afresh for every job), so a host agent
 * downloads the slug without ever holding the shelf key, and a leaked URL opens one blob for
 * minutes.
 *
 * `<blob URL>?expires=<unix ms>&signature=<base64url HMAC-SHA256(k, "GET\n<path>\n<expires>")>`,
 * with `k = HMAC-SHA256(shelfKey, "flynn-ts shelf url")` and `<path>` the normalised blob path.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { normalizeBlobPath } from './path.js';

export const SIGNED_URL_DEFAULTS = Object.freeze({
  /** How long a signed URL can be used, in ms. Covers a host's download queue and retries. */
  ttlMs: 10 * 60_000,
});

export interface ShelfUrlSignerOptions {
  /** The shelf's base URL (`ShelfClient.url`): only URLs under it are signed. */
  url: string;
  /** The shelf key. */
  key: string;
  /** Default {@link SIGNED_URL_DEFAULTS}.ttlMs. */
  ttlMs?: number;
  /** Clock, in ms. Default `Date.now`. */
  now?: () => number;
}

/** What a request's signature amounts to for a read of `path`. */
export type SignatureCheck = 'ok' | 'none' | 'expired' | 'wrong';

function urlKey(shelfKey: string): Buffer {
  return createHmac('sha256', shelfKey).update('flynn-ts shelf url').digest();
}

function sign(key: Buffer, path: string, expires: string): Buffer {
  return createHmac('sha256', key).update(`GET\n${path}\n${expires}`).digest();
}

/**
 * A function that turns a blob URL under `options.url` into a signed one valid for `ttlMs`; any
 * other URL (an artifact somewhere else) is returned as it is.
 */
export function shelfUrlSigner(options: ShelfUrlSignerOptions): (url: string) => string {
  const base = options.url.replace(/\/+$/, '');
  const key = urlKey(options.key);
  const ttlMs = options.ttlMs ?? SIGNED_URL_DEFAULTS.ttlMs;
  const now = options.now ?? Date.now;
  return (url) => {
    if (!url.startsWith(`${base}/`)) return url;
    const target = new URL(url);
    let path: string;
    try {
      path = normalizeBlobPath(decodeURIComponent(target.pathname));
    } catch {
      return url; // not a blob path: shelf refuses it anyway
    }
    const expires = String(now() + ttlMs);
    target.searchParams.set('expires', expires);
    target.searchParams.set('signature', sign(key, path, expires).toString('base64url'));
    return target.toString();
  };
}

/** A checker of the `expires`/`signature` query of a read of a normalised blob path, in constant time. */
export function signatureChecker(shelfKey: string, now: () => number = Date.now): (path: string, query: URLSearchParams) => SignatureCheck {
  const key = urlKey(shelfKey);
  return (path, query) => {
    const signature = query.get('signature');
    const expires = query.get('expires');
    if (signature === null && expires === null) return 'none';
    if (signature === null || expires === null || !/^\d{1,16}$/.test(expires)) return 'wrong';
    const presented = Buffer.from(signature, 'base64url');
    const want = sign(key, path, expires);
    if (presented.length !== want.length || !timingSafeEqual(presented, want)) return 'wrong';
    return Number(expires) < now() ? 'expired' : 'ok';
  };
}
