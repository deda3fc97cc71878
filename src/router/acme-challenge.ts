import type { HttpRoute } from './types.js';

/** Where an ACME CA fetches an HTTP-01 answer (RFC 8555 8.3). */
export const ACME_CHALLENGE_PATH = '/.well-known/acme-challenge/';

/**
 * The key authorization to answer `GET /.well-known/acme-challenge/<token>` with for `name` (a
 * host, lower case, no port), if one of its routes has that challenge in progress. Every route of
 * the domain is looked at, whatever its path: the CA asks the domain, not a route.
 */
export function acmeAnswer(routes: Iterable<HttpRoute>, name: string, url: string): string | undefined {
  const token = url.slice(ACME_CHALLENGE_PATH.length);
  for (const route of routes) {
    if (route.acmeChallenge?.token === token && route.domain === name) return route.acmeChallenge.keyAuthorization;
  }
  return undefined;
}
