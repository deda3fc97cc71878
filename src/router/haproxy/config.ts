import { join } from 'node:path';
import { ACME_CHALLENGE_PATH } from '../acme-challenge.js';
import { haproxyLogFormat } from '../access-log.js';
import type { ListenAddress, RouterConfig } from '../options.js';
import { DOT_SEGMENT_PATTERN, HOST_PATTERN } from '../request-target.js';

/** The map files the frontend reads; the engine changes them live with `add/set/del map`. */
export function mapFiles(dir: string) {
  return {
    /** `<host><path>/` (exact) or `.<suffix><path>/` (a wildcard's) → slot: longest prefix wins (`map_beg` is a prefix tree). */
    routes: join(dir, 'routes.map'),
    /** slot → service, for the error bodies. */
    service: join(dir, 'service.map'),
    /** slot → 1 for routes with `redirectHttps`. */
    redirect: join(dir, 'redirect.map'),
    /** slot → ms: a route's `timeout server` (responseHeadersMs, else idleMs). */
    serverTimeout: join(dir, 'server-timeout.map'),
    /** slot → ms: a route's `timeout tunnel` (websocketIdleMs). */
    tunnelTimeout: join(dir, 'tunnel-timeout.map'),
    /** health-checked slot → the path of its route's `healthCheck`. */
    healthPath: join(dir, 'health-path.map'),
    /** health-checked slot → the Host its checks send (the route's domain, a wildcard's `*.` dropped). */
    healthHost: join(dir, 'health-host.map'),
    /** `<host>/.well-known/acme-challenge/<token>/` → key authorization, while an ACME order is in progress. */
    acme: join(dir, 'acme.map'),
  };
}

/** The 400 messages of a request without exactly one Host, by `req.hdr_cnt(host),bool` (a static map written at start). */
export const HOST_ERRORS = '0 missing Host header\n1 more than one Host header\n';

/** HAProxy's answer to a request it cannot parse (an errorfile is sent raw). */
export const BAD_REQUEST = 'HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: 29\r\nconnection: close\r\n\r\n400 Bad Request: bad request\n';

/** Wildcard levels looked up after the exact host (`a.b.c.example.com` tries `*.b.c.example.com` ... 4 labels up). */
const WILDCARD_LEVELS = 4;

/**
 * Drops the headers a `Connection` header names (hop-by-hop, RFC 9110 7.6.1), as the node engine
 * does; HAProxy itself only acts on `close` and `keep-alive`. Host and the body framing are kept.
 */
export const HOP_BY_HOP_LUA = `local keep = { host = true, ["content-length"] = true, ["transfer-encoding"] = true, ["keep-alive"] = true, close = true, upgrade = true }
local function strip(http, get, del)
  local named = get(http)["connection"]
  if named == nil then return end
  for _, value in pairs(named) do
    for name in string.gmatch(value, "[^,%s]+") do
      local n = string.lower(name)
      if not keep[n] then del(http, n) end
    end
  end
end
core.register_action("flynn_hop_req", { "http-req" }, function(txn) strip(txn.http, txn.http.req_get_headers, txn.http.req_del_header) end)
core.register_action("flynn_hop_res", { "http-res" }, function(txn) strip(txn.http, txn.http.res_get_headers, txn.http.res_del_header) end)
`;

/** The usual Connection values, told apart by a string compare before the regex below runs. */
const PLAIN_CONNECTION = 'keep-alive close upgrade';

/** A Connection header value with a token other than keep-alive, close or upgrade (PCRE2, no spaces: a config word). */
const NAMES_A_HEADER = '(^|,)[[:space:]]*(?!(keep-alive|close|upgrade)[[:space:]]*(,|$))[^,[:space:]]';

export interface HaproxyConfigInput {
  dir: string;
  socket: string;
  http: ListenAddress;
  https?: { addr: ListenAddress; crtList: string };
  /** Whether the HTTP(S) listeners are bound: not while a router that starts with routes loads them (engine.ts). */
  listening: boolean;
  /** Where HAProxy's Prometheus exporter listens, if anywhere. */
  metrics?: ListenAddress;
  config: RouterConfig;
  /** Lines added to a slot backend: its settings and live servers when the configuration is rewritten for a reload (slots.ts). */
  slotLines?: (slot: string) => string[];
  /** Sections after the slots: the TCP routes' (tcp.ts). */
  tail?: string;
}

const bind = (a: ListenAddress) => (a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`);
const text = (status: number, body: string) => `content-type "text/plain; charset=utf-8" lf-string "${status} ${body}\\n"`;

/** What a slot backend is declared with (backend configuration the Runtime API cannot change). */
export interface SlotKind {
  /** A sticky cookie. */
  sticky: boolean;
  /** HTTP health checks (`option httpchk`, the request read from maps by the slot's name). */
  checked: boolean;
}

export const SLOT_KINDS: readonly SlotKind[] = [
  { sticky: false, checked: false },
  { sticky: true, checked: false },
  { sticky: false, checked: true },
  { sticky: true, checked: true },
];

/** Slot backend names, `count` of each kind: `p<i>` plain, `s<i>` sticky, `hp<i>`/`hs<i>` the same with health checks. */
export function slotNames(count: number): { name: string; kind: SlotKind }[] {
  return SLOT_KINDS.flatMap((kind) => Array.from({ length: count }, (_, i) => ({ name: `${kind.checked ? 'h' : ''}${kind.sticky ? 's' : 'p'}${i}`, kind })));
}

/**
 * The whole HAProxy configuration: one frontend (HTTP, and HTTPS with SNI from a crt-list), and a
 * fixed number of empty backends ("slots") that routes are given at run time, since the Runtime
 * API can add servers and map entries but not backends. Rewritten with the live state (servers,
 * maps, certificates, server states) for a reload (reload.ts).
 */
export function haproxyConfig(input: HaproxyConfigInput): string {
  const { config: c, dir } = input;
  const maps = mapFiles(dir);
  const t = c.timeouts;
  // The service's name is looked up only for an error body (and the access log's lines).
  const service = `%[var(txn.slot),map(${maps.service})]`;
  const lookup = (from: string) => `var(${from}),concat(,txn.path,),map_beg(${maps.routes})`;
  // One rule per level, the host's first i+1 labels cut by one regex (no rule at all runs its regex once a level matched).
  const wildcard = Array.from({ length: WILDCARD_LEVELS }, (_, i) => `  http-request set-var(txn.slot) var(txn.host),regsub(^[^.]*${'\\.[^.]*'.repeat(i)},),concat(,txn.path,),map_beg(${maps.routes}) unless { var(txn.slot) -m found }`);
  const httpsPort = input.https?.addr.port;
  const slots = slotNames(c.haproxy.slots);
  const backend = (name: string, { sticky, checked }: SlotKind) =>
    [
      `backend ${name}`,
      // Fewest requests in flight (the node engine's power of two choices approximates it). Not `random(2)`: in 2.6 it
      // never picked one of three servers added with `add server`.
      '  balance leastconn',
      // Idle backend connections serve any client (nginx's upstream keepalive); a closed one is retried (retry-on).
      '  http-reuse always',
      `  retries ${c.maxAttempts - 1}`,
      '  option redispatch 1',
      '  retry-on conn-failure empty-response',
      // A reset once the request went out is retried for idempotent methods only (never a POST twice).
      '  http-request disable-l7-retry unless METH_GET || METH_HEAD || METH_OPTIONS',
      // A route's own timeouts (set-timeout is a backend rule), keyed by the slot's name: a route without any costs one
      // lookup in an empty map each.
      `  http-request set-timeout server be_name,map(${maps.serverTimeout}) if { be_name,map(${maps.serverTimeout}) -m found }`,
      `  http-request set-timeout tunnel be_name,map(${maps.tunnelTimeout}) if { be_name,map(${maps.tunnelTimeout}) -m found }`,
      ...(sticky ? [`  cookie ${c.stickyCookie} insert indirect nocache httponly dynamic`, '  dynamic-cookie-key unset'] : []),
      // The route's check request, looked up by the slot's name (be_name works in a check): any 2xx/3xx passes.
      ...(checked
        ? ['  option httpchk', `  http-check send meth GET uri-lf %[be_name,map(${maps.healthPath})] ver HTTP/1.1 hdr host %[be_name,map(${maps.healthHost})] hdr connection close`, '  http-check expect status 200-399']
        : []),
      ...(input.slotLines?.(name) ?? []),
    ].join('\n');
  return `# written by flynn-ts (router engine 'haproxy'); changed live through the Runtime API, reloaded only for TCP ports and slot settings
global
  # A reload (master-worker: the master hands the listening sockets to the new worker itself) loads the server states (ejected, draining) saved here.
  stats socket ${input.socket} mode 600 level admin
  server-state-file ${join(dir, 'server-state')}${c.accessLog ? '\n  log stdout format raw local0 info info' : ''}
  lua-load ${join(dir, 'hop-by-hop.lua')}
  nbthread ${c.haproxy.threads}
  tune.ssl.default-dh-param 2048

defaults
  mode http
  load-server-state-from-file global
  # A client that goes away cancels its request to the backend (as the node engine does).
  option abortonclose
  timeout connect ${t.connectMs}
  timeout client ${t.idleMs}
  timeout server ${Math.max(t.responseHeadersMs, 1)}
  timeout tunnel ${t.websocketIdleMs}
  timeout http-request ${c.requestHeadersTimeoutMs}
  timeout http-keep-alive ${c.keepAliveTimeoutMs}
  timeout client-fin 1s
  timeout server-fin 1s
  http-error status 502 ${text(502, `Bad Gateway: backend of ${service} failed before answering`)}
  http-error status 503 ${text(503, `Service Unavailable: no live backend for ${service}`)}
  http-error status 504 ${text(504, `Gateway Timeout: backend of ${service} did not answer in time`)}

frontend router
${c.accessLog ? `  log global\n  capture request header Referer len 256\n  capture request header User-Agent len 256\n  log-format ${haproxyLogFormat(c.accessLog.format ?? 'json')}\n` : ''}  errorfile 400 ${join(dir, '400.http')}
${input.listening ? `  bind ${bind(input.http)}${c.proxyProtocol ? ' accept-proxy' : ''}\n` : ''}${input.listening && input.https ? `  bind ${bind(input.https.addr)}${c.proxyProtocol ? ' accept-proxy' : ''} ssl crt-list ${input.https.crtList} alpn h2,http/1.1\n` : ''}  # One test for both: the message is looked up by whether there was any Host.
  http-request return status 400 ${text(400, `Bad Request: %[req.hdr_cnt(host),bool,map_int(${join(dir, 'host-error.map')})]`)} unless { req.hdr_cnt(host) eq 1 }
  http-request return status 200 hdr allow "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS" if METH_OPTIONS { url * }
  http-request return status 400 ${text(400, 'Bad Request: %[method] * is not a request')} if { url * }
  # The same Host grammar as the node engine's (request-target.ts); HAProxy itself refuses an absolute-form target whose authority is not the Host.
  http-request return status 400 ${text(400, 'Bad Request: malformed Host header')} unless { req.hdr(host) -m reg '${HOST_PATTERN}' }
  # Dot-segments as request-target.ts refuses them; the substring test first keeps the regex off most requests.
  http-request return status 400 ${text(400, 'Bad Request: dot-segment in the request path')} if { path -m sub /. /%2e /%2E } { path -m reg '${DOT_SEGMENT_PATTERN}' }
  # Backends get origin-form (HTTP/1.1 absolute-form is otherwise forwarded as sent).
  http-request set-uri %[pathq] unless { url_beg / }
  # Lua only when Connection names a header (a backend's plain \`Connection: keep-alive\` costs nothing).
  http-request lua.flynn_hop_req if { req.fhdr(connection) -m found } !{ req.fhdr(connection) -i ${PLAIN_CONNECTION} } { req.fhdr(connection) -m reg -i ${NAMES_A_HEADER} }
  http-response lua.flynn_hop_res if { res.fhdr(connection) -m found } !{ res.fhdr(connection) -i ${PLAIN_CONNECTION} } { res.fhdr(connection) -m reg -i ${NAMES_A_HEADER} }
  # Regexes only when there is a port or a trailing dot to strip (cheap substring tests first).
  http-request set-var(txn.host) req.hdr(host),lower
  http-request set-var(txn.host) var(txn.host),regsub(:[0-9]+$,) if { var(txn.host) -m sub : }
  http-request set-var(txn.host) var(txn.host),regsub(\\.$,) if { var(txn.host) -m end . }
  http-request set-var(txn.path) path,concat(/)
  # ACME HTTP-01 challenges are answered here, for the domain whatever its routes' paths (one path test on other requests).
  http-request return status 200 content-type text/plain lf-string "%[var(txn.host),concat(,txn.path,),map(${maps.acme})]" hdr cache-control no-store if { path_beg ${ACME_CHALLENGE_PATH} } { var(txn.host),concat(,txn.path,),map(${maps.acme}) -m found }
  http-request set-var(txn.slot) ${lookup('txn.host')}
${wildcard.join('\n')}
  http-request return status 404 ${text(404, 'Not Found: no route for %[var(txn.host)]')} unless { var(txn.slot) -m found }
${c.accessLog ? `  http-request set-var(txn.service) var(txn.slot),map(${maps.service})\n` : ''}${httpsPort !== undefined ? `  http-request redirect location https://%[var(txn.host)]${httpsPort === 443 ? '' : `:${httpsPort}`}%[url] code 308 if !{ ssl_fc } { var(txn.slot),map(${maps.redirect}) -m found }\n` : ''}  option forwardfor
  http-request set-header x-forwarded-proto %[ssl_fc,iif(https,http)]
  http-request set-header x-forwarded-port %[dst_port]
  http-request set-header x-request-start t=%[date(0,ms)]
  http-request set-header x-request-id %[uuid] if !{ req.hdr_cnt(x-request-id) eq 1 } or !{ req.hdr(x-request-id) -m reg ^[A-Za-z0-9+/=_.-]{20,200}$ }
  http-request add-header forwarded for=%[src];proto=%[ssl_fc,iif(https,http)];host=%[req.hdr(host)]
  # RFC 7239: a host with a port is a quoted string (the line just added is the last one; one test in the usual case).
  http-request replace-header forwarded (.*;host=)([^;,\\"]*:[^;,\\"]*)$ \\1\\"\\2\\" if { req.hdr(host) -m sub : }
  # Hop-by-hop request fields (RFC 9110 §7.6.1) that Connection need not name; the Lua above drops those it names.
  http-request del-header proxy-connection
  http-request del-header keep-alive
  http-request del-header te
  http-response del-header keep-alive
  use_backend %[var(txn.slot)]

${
  input.metrics
    ? `frontend metrics
  bind ${bind(input.metrics)}
  http-request use-service prometheus-exporter if { path /metrics }
  http-request return status 404 content-type text/plain string "404 Not Found: try /metrics\\n"

`
    : ''
}${slots.map((slot) => backend(slot.name, slot.kind)).join('\n\n')}
${input.tail ? `\n${input.tail}` : ''}`;
}
