import { createSecureContext, type SecureContext } from 'node:tls';
import type { Logger } from '../common/logger.js';
import type { CertificatePair } from './certificate.js';
import type { HttpRoute } from './types.js';

export function secureContext(pair: CertificatePair): SecureContext {
  return createSecureContext({ cert: pair.cert, key: pair.key });
}

/** The route certificates served by SNI: one per domain (the first route of a domain with `tls` wins). */
export class SniCertificates {
  private readonly byName = new Map<string, SecureContext>();

  /** Rebuild from the HTTP routes in force; a certificate node cannot load is logged and skipped. */
  rebuild(routes: HttpRoute[], logger: Logger): void {
    this.byName.clear();
    for (const route of routes) {
      if (!route.tls || this.byName.has(route.domain)) continue;
      try {
        this.byName.set(route.domain, secureContext(route.tls));
      } catch (err) {
        logger.warn('route certificate rejected', { route: route.id, error: (err as Error).message });
      }
    }
  }

  /** The certificate for an SNI name: exact domain first, then the nearest wildcard. */
  lookup(servername: string): SecureContext | undefined {
    const name = servername.toLowerCase();
    const exact = this.byName.get(name);
    if (exact) return exact;
    let dot = name.indexOf('.');
    while (dot !== -1) {
      const hit = this.byName.get('*' + name.slice(dot));
      if (hit) return hit;
      dot = name.indexOf('.', dot + 1);
    }
    return undefined;
  }
}
