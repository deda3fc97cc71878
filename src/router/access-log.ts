import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HttpRouteTable } from './route-table.js';

/** Access logs: one line per request, opt-in (`accessLog` router option). */
export interface AccessLogOptions {
  /** `json` (one object per line) or `combined` (Apache/nginx combined log format). Default `json`. */
  format?: 'json' | 'combined';
  /** Where each line goes (without its newline). Default: written to the process's stdout. */
  write?: (line: string) => void;
}

/** One logged request, as both engines fill it. */
interface Entry {
  /** Request start, ms since the epoch. */
  ts: number;
  client: string;
  method: string;
  host: string;
  /** Path and query. */
  url: string;
  proto: string;
  status: number;
  /** Bytes sent to the client for this answer, head included (as HAProxy's %B); unknown over HTTP/2. */
  bytes: number | undefined;
  /** Request start to response end, ms. */
  ms: number;
  /** The service of the route that matched, if one did. */
  service: string | undefined;
  referer: string | undefined;
  userAgent: string | undefined;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n: number) => String(n).padStart(2, '0');
const clfDate = (d: Date) => `${pad(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
const quoted = (s: string | undefined) => `"${(s ?? '-').replace(/["\\]/g, (c) => `\\${c}`)}"`;

export function formatEntry(e: Entry, format: 'json' | 'combined'): string {
  if (format === 'json') return JSON.stringify(e);
  return `${e.client} - - [${clfDate(new Date(e.ts))}] ${quoted(`${e.method} ${e.url} ${e.proto}`)} ${e.status} ${e.bytes ?? '-'} ${quoted(e.referer)} ${quoted(e.userAgent)}`;
}

export function accessLogWriter(options: AccessLogOptions): (line: string) => void {
  return options.write ?? ((line) => void process.stdout.write(`${line}\n`));
}

/** A `request` listener for the node engine's servers that logs each request when its answer ends. */
export function nodeAccessLog(options: AccessLogOptions, table: HttpRouteTable): (req: IncomingMessage, res: ServerResponse) => void {
  const write = accessLogWriter(options);
  const format = options.format ?? 'json';
  return (req, res) => {
    const ts = Date.now();
    const start = performance.now();
    // Over HTTP/1.1 a socket carries one answer at a time, so its byte count tells this answer's size.
    const h1 = req.httpVersionMajor === 1;
    const sent = h1 ? req.socket.bytesWritten : 0;
    res.once('close', () => {
      const host = String(req.headers.host ?? req.headers[':authority'] ?? '');
      write(
        formatEntry(
          {
            ts,
            client: req.socket.remoteAddress ?? '-',
            method: req.method ?? '-',
            host,
            url: req.url ?? '/',
            proto: `HTTP/${req.httpVersion}`,
            status: res.statusCode,
            bytes: h1 ? req.socket.bytesWritten - sent : undefined,
            ms: Math.round((performance.now() - start) * 10) / 10,
            service: table.match(host, req.url ?? '/')?.service,
            referer: req.headers.referer,
            userAgent: req.headers['user-agent'],
          },
          format,
        ),
      );
    });
  };
}

/** HAProxy's `log-format` for the same lines (its variables as set by the router's frontend). */
export function haproxyLogFormat(format: 'json' | 'combined'): string {
  if (format === 'combined') return `"${HAPROXY_ACCESS_MARK}%ci - - [%trl] %{+Q}r %ST %B %{+Q}[capture.req.hdr(0)] %{+Q}[capture.req.hdr(1)]"`;
  return `"${HAPROXY_ACCESS_MARK}{\\"ts\\":%[date(0,ms)],\\"client\\":\\"%ci\\",\\"method\\":\\"%HM\\",\\"host\\":%{+Q}[var(txn.host)],\\"url\\":%{+Q}HU,\\"proto\\":\\"%HV\\",\\"status\\":%ST,\\"bytes\\":%B,\\"ms\\":%Ta,\\"service\\":%{+Q}[var(txn.service)],\\"referer\\":%{+Q}[capture.req.hdr(0)],\\"userAgent\\":%{+Q}[capture.req.hdr(1)]}"`;
}

/**
 * What starts each access line in HAProxy's log stream, which also carries HAProxy's own messages
 * (a reload's old worker logs `Proxy router stopped ...`, at a level no filter can drop without
 * dropping the access lines too): the engine passes on only the lines that start with it.
 */
export const HAPROXY_ACCESS_MARK = 'access: ';
