import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** The components that get a key of their own, derived from the cluster key (see {@link componentKey}). */
export type KeyedComponent = 'host' | 'shelf' | 'discovery';

/**
 * The credential of one internal component, derived from the cluster key:
 * `hex(HMAC-SHA256(clusterKey, "flynn-ts <component>"))`. Whoever holds the cluster key can
 * compute every component key; a component key opens only that component (a host agent's key
 * leaked from a host does not open the controller or shelf). See docs/security.md.
 */
export function componentKey(clusterKey: string, component: KeyedComponent): string {
  return createHmac('sha256', clusterKey).update(`flynn-ts ${component}`).digest('hex');
}

/** What a request's `Authorization` header amounts to against a shared key. */
export type KeyCheck = 'ok' | 'missing' | 'wrong';

/**
 * A checker of `Authorization: Bearer <key>` or `Basic <base64(user:key)>` (any user name, as
 * Flynn's controller does) against `key`, compared in constant time over digests so that neither
 * the content nor the length of the key leaks through timing.
 */
export function keyChecker(key: string): (authorization: string | undefined) => KeyCheck {
  const want = digest(key);
  return (authorization) => {
    const presented = presentedKey(authorization);
    if (presented === undefined) return 'missing';
    return timingSafeEqual(digest(presented), want) ? 'ok' : 'wrong';
  };
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

function presentedKey(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const [scheme, value] = header.split(/\s+/, 2);
  if (!scheme || value === undefined) return undefined;
  if (scheme.toLowerCase() === 'bearer') return value;
  if (scheme.toLowerCase() === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon === -1 ? undefined : decoded.slice(colon + 1);
  }
  return undefined;
}
