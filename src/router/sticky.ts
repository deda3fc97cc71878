import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Sticky-session cookies: the value names a backend address and carries an HMAC-SHA256 (keyed by
 * the router's sticky key, bound to the route id) so that clients cannot steer themselves to an
 * arbitrary address. Format: `base64url(addr).base64url(mac[0..16])`.
 */
export class StickySigner {
  constructor(private readonly key: Buffer) {}

  sign(routeId: string, addr: string): string {
    return `${Buffer.from(addr).toString('base64url')}.${this.mac(routeId, addr).toString('base64url')}`;
  }

  /** The backend address a cookie value pins to, or undefined if it is malformed or forged. */
  verify(routeId: string, value: string): string | undefined {
    const dot = value.indexOf('.');
    if (dot <= 0 || value.length > 400) return undefined;
    const addr = Buffer.from(value.slice(0, dot), 'base64url').toString();
    const given = Buffer.from(value.slice(dot + 1), 'base64url');
    const want = this.mac(routeId, addr);
    if (given.length !== want.length || !timingSafeEqual(given, want)) return undefined;
    return addr;
  }

  private mac(routeId: string, addr: string): Buffer {
    return createHmac('sha256', this.key).update(routeId).update('\0').update(addr).digest().subarray(0, 16);
  }
}

/** The value of cookie `name` in a `Cookie` header, or undefined. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
