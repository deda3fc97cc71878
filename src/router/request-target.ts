/**
 * The request's Host and request-target, checked before routing (RFC 9112 §3.2, RFC 3986 §3.2):
 * one small pure module, called by every path that routes a request (node's server handler and any
 * faster front), so all of them refuse the same requests.
 */

/**
 * `host[:port]`: a reg-name or IPv4 (unreserved, sub-delims, %-escapes) or a bracketed IPv6
 * literal; the port numeric. No userinfo, no path. A pattern both JS and PCRE read (the haproxy
 * engine's config uses it too; `\x27` is `'`, so it can sit in single quotes there).
 */
export const HOST_PATTERN = String.raw`^(?:[A-Za-z0-9._~!$&\x27()*+,;=%-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$`;
const HOST_RE = new RegExp(HOST_PATTERN);
/** An absolute-form target: `scheme://authority[path-abempty][?query]`. */
const ABSOLUTE_RE = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^#]*)$/;
const DEFAULT_PORTS: Record<string, string> = { http: ':80', https: ':443' };
/**
 * A `.` or `..` path segment, plain or %-encoded. Routes match the raw path while a backend may
 * resolve dot-segments, so `/x/../api` could reach a route other than the one it is sent to;
 * browsers never send them (they resolve them first), so they are refused. Same pattern in the
 * haproxy engine's config.
 */
export const DOT_SEGMENT_PATTERN = String.raw`(^|/)(\.|%2[eE]){1,2}(/|$)`;
const DOT_SEGMENT_RE = new RegExp(DOT_SEGMENT_PATTERN);

/**
 * Why a request with this `Host` (HTTP/2: `:authority`) and request-target is refused with 400,
 * or `undefined` when it may be routed. `url` is the request-target as received: origin-form
 * (`/path?q`) needs only a valid Host; absolute-form (`http://host/path`) must also name the same
 * authority as Host, as HAProxy requires (ignoring case and the scheme's default port), and have
 * no userinfo. `*` is left to the caller (`OPTIONS *`).
 */
export function targetError(host: string, url: string): string | undefined {
  if (!HOST_RE.test(host)) return 'malformed Host header';
  if (url.charCodeAt(0) === 47 /* / */) return dotSegmentError(url);
  if (url === '*') return undefined;
  const m = ABSOLUTE_RE.exec(url);
  if (!m) return 'malformed request target';
  const scheme = (m[1] as string).toLowerCase();
  const authority = m[2] as string;
  if (!HOST_RE.test(authority)) return 'malformed authority in the request target';
  if (!sameAuthority(authority, host, DEFAULT_PORTS[scheme])) return 'request target and Host name different hosts';
  return dotSegmentError(m[3] as string);
}

function dotSegmentError(target: string): string | undefined {
  const q = target.indexOf('?');
  const path = q === -1 ? target : target.slice(0, q);
  // The cheap test first: most paths have neither.
  if (!path.includes('.') && !path.includes('%')) return undefined;
  return DOT_SEGMENT_RE.test(path) ? 'dot-segment in the request path' : undefined;
}

/** The origin-form of a request-target the router forwards (`http://h/p?q` → `/p?q`); origin-form is returned as is. */
export function originForm(url: string): string {
  if (url.charCodeAt(0) === 47 /* / */) return url;
  const m = ABSOLUTE_RE.exec(url);
  if (!m) return url;
  const rest = m[3] as string;
  return rest === '' ? '/' : rest.charCodeAt(0) === 63 /* ? */ ? `/${rest}` : rest;
}

function sameAuthority(a: string, b: string, defaultPort: string | undefined): boolean {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  if (x === y) return true;
  if (defaultPort === undefined) return false;
  return stripSuffix(x, defaultPort) === stripSuffix(y, defaultPort);
}

function stripSuffix(s: string, suffix: string): string {
  return s.endsWith(suffix) ? s.slice(0, -suffix.length) : s;
}
