import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/**
 * Header rewriting on the proxy's hot path. Both directions work on flat `[name, value, ...]`
 * arrays (node's `rawHeaders`, undici's raw response headers) and hand flat arrays on to
 * `res.writeHead` / undici / `http.request`: no per-request header objects, and a header name is
 * lower-cased only when its length matches one the router cares about.
 */

/** Heroku's rule for a client-supplied request id. */
const REQUEST_ID_RE = /^[A-Za-z0-9+/=_.-]{20,200}$/;

/** What the router reads from a request's headers, and the headers the backend gets. */
export interface ForwardedRequest {
  /** The first `Host` header, as sent; HTTP/2's `:authority` when present (RFC 9113 §8.3.1). */
  host: string | undefined;
  /** How many `Host` headers came (more than one is a 400). */
  hostCount: number;
  /** HTTP/2: a `host` header names another authority than `:authority` (a 400). */
  authorityConflict: boolean;
  /** Bytes of header names and values (HTTP/2's limit is checked by the router: node's parser checks HTTP/1's). */
  headerBytes: number;
  /** All `Cookie` headers joined with `; ` (as node does). */
  cookie: string | undefined;
  /** A non-zero `Content-Length` or any `Transfer-Encoding`. */
  hasBody: boolean;
  /** Flat `[name, value, ...]`: hop-by-hop removed, X-Forwarded-* and X-Request-* set. */
  headers: string[];
  /** The `Upgrade` header, when the request has one. */
  upgrade: string | undefined;
}

/**
 * Request headers as the backend gets them (RFC 9110 §7.6.1 hop-by-hop headers and those the
 * `Connection` header names are dropped). The framing is undici's to write: `Transfer-Encoding` is
 * dropped (undici re-frames a body without a length as chunked) and so is `Expect` (node's server
 * answers `100 Continue` itself). An `Upgrade` header is handed back in `upgrade`, for undici's
 * `upgrade` option, which writes `Connection: upgrade` itself.
 */
export function forwardRequest(req: Pick<IncomingMessage, 'rawHeaders' | 'socket'>, proto: string, port: string, upgrade: boolean): ForwardedRequest {
  const raw = req.rawHeaders;
  const out: string[] = [];
  let host: string | undefined;
  let hostCount = 0;
  let authority: string | undefined;
  let forwarded: string | undefined;
  let cookie: string | undefined;
  let hasBody = false;
  let xff: string | undefined;
  let id: string | undefined;
  let idCount = 0;
  let upgradeValue: string | undefined;
  let connection: string | undefined;
  let headerBytes = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    headerBytes += name.length + value.length;
    if (name.charCodeAt(0) === 58) {
      // HTTP/2 pseudo-headers (`:method`, `:path`...): only `:authority` goes on, as `Host`.
      if (name === ':authority') authority = value;
      continue;
    }
    switch (name.length) {
      case 2:
        if (name.toLowerCase() === 'te') continue;
        break;
      case 4:
        if (name.toLowerCase() === 'host') {
          host ??= value;
          hostCount++;
        }
        break;
      case 6: {
        const lower = name.toLowerCase();
        if (lower === 'cookie') cookie = cookie === undefined ? value : `${cookie}; ${value}`;
        else if (lower === 'expect') continue;
        break;
      }
      case 7: {
        const lower = name.toLowerCase();
        if (lower === 'upgrade') {
          upgradeValue ??= value;
          continue;
        }
        if (lower === 'trailer') continue;
        break;
      }
      case 10: {
        const lower = name.toLowerCase();
        if (lower === 'connection') {
          connection = connection === undefined ? value : `${connection}, ${value}`;
          continue;
        }
        if (lower === 'keep-alive') continue;
        break;
      }
      case 9:
        if (name.toLowerCase() === 'forwarded') {
          forwarded = forwarded === undefined ? value : `${forwarded}, ${value}`;
          continue;
        }
        break;
      case 12:
        if (name.toLowerCase() === 'x-request-id') {
          id = value;
          idCount++;
          continue;
        }
        break;
      case 14:
        if (name.toLowerCase() === 'content-length' && value !== '0') hasBody = true;
        break;
      case 15: {
        const lower = name.toLowerCase();
        if (lower === 'x-forwarded-for') {
          xff = xff === undefined ? value : `${xff}, ${value}`;
          continue;
        }
        if (lower === 'x-request-start') continue;
        break;
      }
      case 16: {
        const lower = name.toLowerCase();
        if (lower === 'x-forwarded-port' || lower === 'proxy-connection') continue;
        break;
      }
      case 17: {
        const lower = name.toLowerCase();
        if (lower === 'x-forwarded-proto') continue;
        if (lower === 'transfer-encoding') {
          hasBody = true;
          continue;
        }
        break;
      }
    }
    out.push(name, value);
  }
  let authorityConflict = false;
  if (authority !== undefined) {
    // HTTP/2 routes by `:authority`; a `host` header beside it must agree (RFC 9113 §8.3.1).
    if (host === undefined) {
      hostCount = 1;
      out.push('host', authority);
    } else authorityConflict = host.toLowerCase() !== authority.toLowerCase();
    host = authority;
  }
  const headers = connection !== undefined && !upgrade ? dropNamed(out, connection) : out;
  const ip = clientIp(req);
  const element = forwardedElement(ip, proto, host);
  headers.push(
    'forwarded',
    forwarded ? `${forwarded}, ${element}` : element,
    'x-forwarded-for',
    xff ? `${xff}, ${ip}` : ip,
    'x-forwarded-proto',
    proto,
    'x-forwarded-port',
    port,
    'x-request-start',
    `t=${Date.now()}`,
    'x-request-id',
    idCount === 1 && REQUEST_ID_RE.test(id as string) ? (id as string) : requestId(),
  );
  return { host, hostCount, authorityConflict, headerBytes, cookie, hasBody, headers, upgrade: upgradeValue };
}

/**
 * Headers a `Connection` header may not remove: the router needs `Host` to route and the backend
 * needs it as sent, and the framing headers describe the body node forwards (as HAProxy and nginx
 * do, they are never treated as hop-by-hop).
 */
const NOT_HOP_BY_HOP = new Set(['host', 'content-length', 'transfer-encoding']);

/** Drop the headers a `Connection` header names (other than the usual keep-alive/close). */
function dropNamed(headers: string[], connection: string): string[] {
  const named = new Set<string>();
  for (const token of connection.split(',')) {
    const t = token.trim().toLowerCase();
    if (t !== '' && t !== 'keep-alive' && t !== 'close' && !NOT_HOP_BY_HOP.has(t)) named.add(t);
  }
  if (named.size === 0) return headers;
  const kept: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string;
    if (!named.has(name.toLowerCase())) kept.push(name, headers[i + 1] as string);
  }
  return kept;
}

/** One RFC 7239 `Forwarded` element for this hop: `for=<ip>;proto=<proto>;host=<host>`. */
function forwardedElement(ip: string, proto: string, host: string | undefined): string {
  const forIp = ip.includes(':') ? `"[${ip}]"` : ip;
  const element = `for=${forIp};proto=${proto}`;
  if (host === undefined || !/^[A-Za-z0-9.:[\]-]+$/.test(host)) return element;
  return `${element};host=${/[:[]/.test(host) ? `"${host}"` : host}`;
}

function clientIp(req: Pick<IncomingMessage, 'socket'>): string {
  const addr = req.socket.remoteAddress ?? '';
  return addr.startsWith('::ffff:') ? addr.slice(7) : addr;
}

let idPrefix = '';
let idCounter = 0;
const ID_COUNTER_SPAN = 2 ** 48;

/**
 * A fresh request id in UUID v4 layout: 74 random bits drawn once per 2^48 ids, then a 48-bit
 * counter. Unique within the process and, with the random part, across router processes;
 * far cheaper than `randomUUID()` per request.
 */
export function requestId(): string {
  if (idCounter === 0 || idCounter >= ID_COUNTER_SPAN) {
    const r = randomBytes(10).toString('hex');
    const variant = ((parseInt(r.charAt(16), 16) & 0x3) | 0x8).toString(16);
    idPrefix = `${r.slice(0, 8)}-${r.slice(8, 12)}-4${r.slice(12, 15)}-${variant}${r.slice(17, 20)}-`;
    idCounter = 0;
  }
  return idPrefix + (idCounter++).toString(16).padStart(12, '0');
}

/**
 * Response headers for the client from a backend's raw headers (undici gives `Buffer`s):
 * hop-by-hop ones dropped (valid for HTTP/1.1 and HTTP/2 clients alike), duplicates (e.g. `set-cookie`) kept as separate lines.
 */
export function responseHeaders(raw: ReadonlyArray<Buffer | string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i] as Buffer | string;
    const name = typeof n === 'string' ? n : n.toString('latin1');
    const len = name.length;
    if (len === 2 || len === 7 || len === 10 || len === 16 || len === 17) {
      const lower = name.toLowerCase();
      // `transfer-encoding` too: node re-frames the body for HTTP/1.1 clients, and HTTP/2 forbids it.
      if (lower === 'te' || lower === 'trailer' || lower === 'upgrade' || lower === 'connection' || lower === 'keep-alive' || lower === 'proxy-connection' || lower === 'transfer-encoding') continue;
    }
    const v = raw[i + 1] as Buffer | string;
    out.push(name, typeof v === 'string' ? v : v.toString('latin1'));
  }
  return out;
}
