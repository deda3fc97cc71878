import { validateService } from '../discovery/validate.js';
import { RouterErrorCodes as Codes, RouterInputError } from './errors.js';
import type { HealthCheck, HttpRoute, Route, RouteTimeouts, TcpRoute } from './types.js';

const LABEL = '[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?';
const DOMAIN_RE = new RegExp(`^(\\*\\.)?${LABEL}(\\.${LABEL})*$`);
const PATH_RE = /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*$/;

function bad(message: string, field: string): RouterInputError {
  return new RouterInputError(Codes.INVALID_ROUTE, message, { field });
}

/** Normalise a path prefix: leading `/`, no trailing `/` except for the root. */
export function normalizePath(path: string): string {
  return path.length > 1 && path.endsWith('/') ? path.replace(/\/+$/, '') || '/' : path;
}

/** Check a route from any source and return a normalised frozen copy. */
export function validateRoute(input: unknown): Route {
  if (typeof input !== 'object' || input === null) throw bad('route must be an object', 'route');
  const r = input as Record<string, unknown>;
  if (typeof r.id !== 'string' || r.id.length < 1 || r.id.length > 200) throw bad(`invalid route id ${JSON.stringify(r.id)}: expected 1-200 characters`, 'id');
  let service: string;
  try {
    service = validateService(r.service);
  } catch (err) {
    throw new RouterInputError(Codes.INVALID_ROUTE, `route ${r.id}: ${(err as Error).message}`, { field: 'service', cause: err });
  }
  if (r.type === 'tcp') {
    if (typeof r.port !== 'number' || !Number.isInteger(r.port) || r.port < 1 || r.port > 65535) {
      throw bad(`route ${r.id}: invalid port ${JSON.stringify(r.port)}: expected 1-65535`, 'port');
    }
    const route: TcpRoute = { id: r.id, type: 'tcp', port: r.port, service };
    return Object.freeze(route);
  }
  if (r.type !== 'http') throw bad(`route ${r.id}: invalid type ${JSON.stringify(r.type)}: expected http or tcp`, 'type');
  const domain = typeof r.domain === 'string' ? r.domain.toLowerCase() : r.domain;
  if (typeof domain !== 'string' || domain.length > 253 || !DOMAIN_RE.test(domain)) {
    throw bad(`route ${r.id}: invalid domain ${JSON.stringify(r.domain)}: expected e.g. app.example.com or *.example.com`, 'domain');
  }
  const path = r.path === undefined ? '/' : r.path;
  if (typeof path !== 'string' || path.length > 1024 || !PATH_RE.test(path)) {
    throw bad(`route ${r.id}: invalid path ${JSON.stringify(r.path)}: expected a prefix starting with /`, 'path');
  }
  if (r.sticky !== undefined && typeof r.sticky !== 'boolean') throw bad(`route ${r.id}: sticky must be a boolean`, 'sticky');
  const route: HttpRoute = { id: r.id, type: 'http', domain, path: normalizePath(path), service };
  if (r.sticky) route.sticky = true;
  if (r.redirectHttps !== undefined && typeof r.redirectHttps !== 'boolean') throw bad(`route ${r.id}: redirectHttps must be a boolean`, 'redirectHttps');
  if (r.redirectHttps) route.redirectHttps = true;
  if (r.timeouts !== undefined) route.timeouts = validateTimeouts(r.id, r.timeouts);
  if (r.healthCheck !== undefined) route.healthCheck = validateHealthCheck(r.id, r.healthCheck);
  if (r.tls !== undefined) {
    const tls = r.tls as Record<string, unknown> | null;
    if (typeof tls !== 'object' || tls === null || typeof tls.cert !== 'string' || typeof tls.key !== 'string' || !tls.cert.includes('-----BEGIN') || !tls.key.includes('-----BEGIN')) {
      throw bad(`route ${r.id}: tls must be { cert, key } in PEM`, 'tls');
    }
    route.tls = Object.freeze({ cert: tls.cert, key: tls.key });
  }
  if (r.acmeChallenge !== undefined) {
    const c = r.acmeChallenge as Record<string, unknown> | null;
    // base64url, as RFC 8555 makes them: nothing that needs escaping in a URL, a map file or a body.
    const b64url = (v: unknown) => typeof v === 'string' && /^[A-Za-z0-9_-]{1,256}(\.[A-Za-z0-9_-]{1,256})?$/.test(v);
    if (typeof c !== 'object' || c === null || !b64url(c.token) || String(c.token).includes('.') || !b64url(c.keyAuthorization)) {
      throw bad(`route ${r.id}: acmeChallenge must be { token, keyAuthorization } in base64url`, 'acmeChallenge');
    }
    route.acmeChallenge = Object.freeze({ token: c.token as string, keyAuthorization: c.keyAuthorization as string });
  }
  return Object.freeze(route);
}

const TIMEOUT_FIELDS = ['connectMs', 'responseHeadersMs', 'idleMs', 'websocketIdleMs'] as const;

function validateTimeouts(id: string, input: unknown): RouteTimeouts {
  if (typeof input !== 'object' || input === null) throw bad(`route ${id}: timeouts must be an object`, 'timeouts');
  const t = input as Record<string, unknown>;
  const out: RouteTimeouts = {};
  for (const key of Object.keys(t)) {
    const field = TIMEOUT_FIELDS.find((f) => f === key);
    if (!field) throw bad(`route ${id}: unknown timeout ${JSON.stringify(key)}: expected ${TIMEOUT_FIELDS.join(', ')}`, 'timeouts');
    const v = t[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 2_147_483_647) throw bad(`route ${id}: invalid timeouts.${key} ${JSON.stringify(v)}: expected whole ms ≥ 1`, 'timeouts');
    out[field] = v;
  }
  return Object.freeze(out);
}

function validateHealthCheck(id: string, input: unknown): HealthCheck {
  const h = input as Record<string, unknown> | null;
  if (typeof h !== 'object' || h === null || typeof h.path !== 'string' || !PATH_RE.test(h.path)) throw bad(`route ${id}: healthCheck must be { path, intervalMs?, timeoutMs? } with a path starting with /`, 'healthCheck');
  const check: HealthCheck = { path: h.path };
  for (const key of ['intervalMs', 'timeoutMs'] as const) {
    const v = h[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 2_147_483_647) throw bad(`route ${id}: invalid healthCheck.${key} ${JSON.stringify(v)}: expected whole ms ≥ 1`, 'healthCheck');
    check[key] = v;
  }
  return Object.freeze(check);
}

/** The key two routes must not share: `http host/path` or `tcp port`. */
export function routeKey(route: Route): string {
  return route.type === 'http' ? `http ${route.domain}${route.path ?? '/'}` : `tcp ${route.port}`;
}
