import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ListenAddress } from './options.js';
import type { HttpRouteTable } from './route-table.js';
import { RouterListenError } from './errors.js';

/** Upper bounds of the latency histogram, in seconds. */
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const label = (v: string) => v.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));

/** A {@link RouterMetrics}' counts as plain data, sent by a worker process to the primary. */
export interface MetricsSnapshot {
  requests: [string, number][];
  latency: [string, { buckets: number[]; sum: number; count: number }][];
  failures: [string, number][];
  ejections: [string, number][];
}

function addCounts(into: Map<string, number>, from: [string, number][]): void {
  for (const [k, v] of from) into.set(k, (into.get(k) ?? 0) + v);
}

/**
 * The node engine's Prometheus metrics: requests by route and status class, a latency histogram
 * per route, backend failures by kind and ejections by backend. With `workers`, each worker counts
 * its own and the primary adds their {@link snapshot}s up when scraped.
 */
export class RouterMetrics {
  private readonly requests = new Map<string, number>();
  private readonly latency = new Map<string, { buckets: number[]; sum: number; count: number }>();
  private readonly failures = new Map<string, number>();
  private readonly ejections = new Map<string, number>();

  request(route: string, status: number, seconds: number): void {
    const key = `route="${label(route)}",code="${Math.floor(status / 100)}xx"`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    let h = this.latency.get(route);
    if (!h) this.latency.set(route, (h = { buckets: BUCKETS.map(() => 0), sum: 0, count: 0 }));
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= (BUCKETS[i] as number)) h.buckets[i] = (h.buckets[i] as number) + 1;
    h.sum += seconds;
    h.count++;
  }

  failure(backend: string, kind: string): void {
    const key = `backend="${label(backend)}",kind="${kind}"`;
    this.failures.set(key, (this.failures.get(key) ?? 0) + 1);
  }

  ejection(backend: string): void {
    const key = `backend="${label(backend)}"`;
    this.ejections.set(key, (this.ejections.get(key) ?? 0) + 1);
  }

  snapshot(): MetricsSnapshot {
    return {
      requests: [...this.requests],
      latency: [...this.latency].map(([route, h]) => [route, { buckets: [...h.buckets], sum: h.sum, count: h.count }]),
      failures: [...this.failures],
      ejections: [...this.ejections],
    };
  }

  /** Add another process's counts to these. */
  add(s: MetricsSnapshot): void {
    addCounts(this.requests, s.requests);
    addCounts(this.failures, s.failures);
    addCounts(this.ejections, s.ejections);
    for (const [route, from] of s.latency) {
      const h = this.latency.get(route);
      if (!h) this.latency.set(route, { buckets: [...from.buckets], sum: from.sum, count: from.count });
      else {
        from.buckets.forEach((n, i) => (h.buckets[i] = (h.buckets[i] as number) + n));
        h.sum += from.sum;
        h.count += from.count;
      }
    }
  }

  /** The Prometheus text exposition. */
  text(): string {
    const out: string[] = [];
    const counter = (name: string, help: string, values: Map<string, number>) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`);
      for (const [k, v] of values) out.push(`${name}{${k}} ${v}`);
    };
    counter('flynn_router_requests_total', 'HTTP requests answered, by route id and status class.', this.requests);
    out.push('# HELP flynn_router_request_duration_seconds Request start to answer end, by route id.', '# TYPE flynn_router_request_duration_seconds histogram');
    for (const [route, h] of this.latency) {
      const r = `route="${label(route)}"`;
      BUCKETS.forEach((le, i) => out.push(`flynn_router_request_duration_seconds_bucket{${r},le="${le}"} ${h.buckets[i]}`));
      out.push(`flynn_router_request_duration_seconds_bucket{${r},le="+Inf"} ${h.count}`, `flynn_router_request_duration_seconds_sum{${r}} ${h.sum}`, `flynn_router_request_duration_seconds_count{${r}} ${h.count}`);
    }
    counter('flynn_router_backend_failures_total', 'Failed tries on a backend (refused, reset, timeouts), by backend address and kind.', this.failures);
    counter('flynn_router_ejections_total', 'Backends taken out of rotation by passive or active health checks.', this.ejections);
    return `${out.join('\n')}\n`;
  }

  /** A `request` listener that counts each answer of the router's servers. */
  observer(table: HttpRouteTable): (req: IncomingMessage, res: ServerResponse) => void {
    return (req, res) => {
      const start = performance.now();
      res.once('close', () => {
        const route = table.match(String(req.headers.host ?? req.headers[':authority'] ?? ''), req.url ?? '/')?.id ?? '-';
        this.request(route, res.statusCode, (performance.now() - start) / 1000);
      });
    };
  }
}

/** The admin listener serving `GET /metrics`. */
export async function serveMetrics(addr: ListenAddress, text: () => Promise<string>): Promise<{ port: number; server: Server }> {
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') return res.writeHead(404, { 'content-type': 'text/plain' }).end('404 Not Found: try /metrics\n');
    text().then(
      (body) => res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(body),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`500 Internal Server Error: ${err.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new RouterListenError(`cannot listen for metrics on ${addr.host}:${addr.port}: ${err.message}`, { cause: err })));
    server.listen(addr.port, addr.host, resolve);
  });
  return { port: (server.address() as AddressInfo).port, server };
}
