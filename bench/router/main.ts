/**
 * Router benchmark: wrk through nginx (one worker, keep-alive upstream) and through the flynn-ts
 * router (one process), both in front of the same two backend processes, in one run. Prints req/s,
 * p50/p99 latency and the router/nginx ratios. Installs nothing: if wrk or nginx is missing it says
 * what to apt-get install and exits non-zero.
 *
 *   npm run bench -- router                 # 3 interleaved rounds of wrk -t2 -c50 -d10s per proxy, medians
 *   BENCH_DURATION=5s BENCH_CONNECTIONS=100 BENCH_ROUNDS=5 npm run bench -- router
 *   BENCH_CPU_PROF=/tmp/prof npm run bench -- router   # node --cpu-prof of the router process
 *   BENCH_ROUTER_NODE_FLAGS='--max-semi-space-size=16' npm run bench -- router   # node flags for the router
 *
 * The same file is also the child processes (`--backend`, `--router`), so the bench is one file.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../src/host/testing/jobs.js';

const self = fileURLToPath(import.meta.url);
const HOST = 'bench.test';
const BODY = 'hello from the backend\n'.repeat(4);

async function runBackend(host: string): Promise<void> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(BODY) });
    res.end(BODY);
  });
  server.keepAliveTimeout = 65_000;
  server.listen(0, host, () => process.stdout.write(`PORT ${(server.address() as AddressInfo).port}\n`));
}

async function runRouter(addrs: string[]): Promise<void> {
  const { createDiscovery } = await import('../../src/discovery/index.js');
  const { MemoryRouteSource, startRouter } = await import('../../src/router/index.js');
  const discovery = createDiscovery({ backend: 'memory' });
  for (const addr of addrs) await discovery.register({ service: 'bench-web', addr, ttlMs: 3_600_000 });
  const routes = new MemoryRouteSource([{ id: 'bench', type: 'http', domain: HOST, service: 'bench-web' }]);
  const router = await startRouter({ discovery, routes, http: { host: '127.0.0.1', port: 0 } });
  process.stdout.write(`PORT ${router.http.port}\n`);
  const stop = async () => {
    await router.close();
    await discovery.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
}

function waitPort(child: ChildProcess, what: string): Promise<number> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${what} did not start in 20s`)), 20_000);
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /PORT (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once('exit', (code) => reject(new Error(`${what} exited with ${code}`)));
  });
}

function spawnSelf(args: string[], nodeFlags: string[] = []): ChildProcess {
  return spawn(process.execPath, [...nodeFlags, '--import', 'tsx', self, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
}

function has(bin: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;
}

interface WrkResult {
  rps: number;
  p50ms: number;
  p99ms: number;
  errors: string;
}

function toMs(value: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(value.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000;
}

function wrk(port: number, duration: string, connections: string): WrkResult {
  const args = ['-t2', `-c${connections}`, `-d${duration}`, '--latency', '-H', `Host: ${HOST}`, `http://127.0.0.1:${port}/`];
  const run = spawnSync('wrk', args, { encoding: 'utf8', timeout: 120_000 });
  const out = run.stdout ?? '';
  if (run.status !== 0) throw new Error(`wrk failed: ${run.stderr}`);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const p50 = toMs(/^\s+50%\s+(\S+)/m.exec(out)?.[1] ?? '');
  const p99 = toMs(/^\s+99%\s+(\S+)/m.exec(out)?.[1] ?? '');
  const errors = [/Socket errors:.*/.exec(out)?.[0], /Non-2xx or 3xx responses:.*/.exec(out)?.[0]].filter(Boolean).join('; ');
  return { rps, p50ms: p50, p99ms: p99, errors };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Medians of each figure separately over the rounds. */
function medianOf(results: WrkResult[]): WrkResult {
  return {
    rps: median(results.map((r) => r.rps)),
    p50ms: median(results.map((r) => r.p50ms)),
    p99ms: median(results.map((r) => r.p99ms)),
    errors: results.map((r) => r.errors).filter(Boolean).join(' | '),
  };
}

function nginxConfig(dir: string, port: number, backends: string[]): string {
  const user = process.getuid?.() === 0 ? 'user root root;\n' : '';
  return `${user}worker_processes 1;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  keepalive_timeout 65s;
  keepalive_requests 1000000;
  upstream backends {
${backends.map((b) => `    server ${b};`).join('\n')}
    keepalive 128;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://backends;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Port $server_port;
    }
  }
}
`;
}

function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.pid === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

const fmt = (r: WrkResult) => `${r.rps.toFixed(0).padStart(8)} req/s   p50 ${r.p50ms.toFixed(2).padStart(7)} ms   p99 ${r.p99ms.toFixed(2).padStart(7)} ms${r.errors ? `   (${r.errors})` : ''}`;

async function main(): Promise<number> {
  const missing = ['wrk', 'nginx'].filter((bin) => !has(bin));
  if (missing.length > 0) {
    console.error(`bench/router needs ${missing.join(' and ')}: apt-get install ${missing.join(' ')}`);
    return 1;
  }
  const duration = process.env.BENCH_DURATION ?? '10s';
  const connections = process.env.BENCH_CONNECTIONS ?? '50';
  const warmup = process.env.BENCH_WARMUP ?? '2s';
  const profDir = process.env.BENCH_CPU_PROF;
  const rounds = Math.max(1, Number(process.env.BENCH_ROUNDS ?? '3') || 3);
  const routerFlags = (process.env.BENCH_ROUTER_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  const children: ChildProcess[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'flynn-router-bench-'));
  try {
    const backends: string[] = [];
    for (const host of ['127.0.0.2', '127.0.0.3']) {
      const child = spawnSelf(['--backend', host]);
      children.push(child);
      backends.push(`${host}:${await waitPort(child, `backend on ${host}`)}`);
    }
    console.log(`backends: ${backends.join(', ')} (separate node processes); wrk -t2 -c${connections} -d${duration} after a ${warmup} warm-up`);

    const nginxPort = await freePort('127.0.0.1');
    writeFileSync(join(dir, 'nginx.conf'), nginxConfig(dir, nginxPort, backends));
    const nginx = spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'inherit'] });
    children.push(nginx);
    await new Promise((r) => setTimeout(r, 500));
    if (nginx.exitCode !== null) throw new Error(`nginx exited: ${readFileSync(join(dir, 'error.log'), 'utf8')}`);

    const router = spawnSelf(['--router', ...backends], [...routerFlags, ...(profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [])]);
    children.push(router);
    const routerPort = await waitPort(router, 'router');
    if (routerFlags.length > 0) console.log(`router node flags: ${routerFlags.join(' ')}`);

    // Both proxies stay up (idle while the other is measured); rounds alternate which goes first.
    wrk(nginxPort, warmup, connections);
    wrk(routerPort, warmup, connections);
    const viaNginx: WrkResult[] = [];
    const viaRouter: WrkResult[] = [];
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? (['nginx', 'router'] as const) : (['router', 'nginx'] as const);
      for (const which of order) {
        if (which === 'nginx') viaNginx.push(wrk(nginxPort, duration, connections));
        else viaRouter.push(wrk(routerPort, duration, connections));
      }
      const n = viaNginx[round] as WrkResult;
      const r = viaRouter[round] as WrkResult;
      console.log(`round ${round + 1} (load avg ${loadavg()[0]?.toFixed(1)}): nginx ${fmt(n)}`);
      console.log(`                     flynn-ts ${fmt(r)}   ratio req/s ${(r.rps / n.rps).toFixed(2)}x p99 ${(r.p99ms / n.p99ms).toFixed(2)}x`);
    }
    await stop(router);
    await stop(nginx);

    const mn = medianOf(viaNginx);
    const mr = medianOf(viaRouter);
    console.log(`median of ${rounds} round(s):`);
    console.log(`nginx 1w  ${fmt(mn)}`);
    console.log(`flynn-ts  ${fmt(mr)}`);
    const rpsRatio = mr.rps / mn.rps;
    const p99Ratio = mr.p99ms / mn.p99ms;
    console.log(`router/nginx: req/s ${rpsRatio.toFixed(2)}x (goal >= 1.0x), p99 ${p99Ratio.toFixed(2)}x (goal <= 1.5x)`);
    if (rounds > 1) {
      const rr = viaRouter.map((r, i) => r.rps / (viaNginx[i] as WrkResult).rps);
      const pr = viaRouter.map((r, i) => r.p99ms / (viaNginx[i] as WrkResult).p99ms);
      console.log(`per-round ratios: req/s ${rr.map((x) => x.toFixed(2)).join(' ')} (median ${median(rr).toFixed(2)}x), p99 ${pr.map((x) => x.toFixed(2)).join(' ')} (median ${median(pr).toFixed(2)}x)`);
    }
    if (profDir) console.log(`router CPU profile written under ${profDir}`);
    return 0;
  } finally {
    for (const child of children.reverse()) await stop(child);
    rmSync(dir, { recursive: true, force: true });
  }
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === '--backend') void runBackend(rest[0] ?? '127.0.0.2');
else if (mode === '--router') void runRouter(rest);
else
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
