/**
 * Router benchmark: wrk through nginx (one worker, keep-alive upstream), HAProxy configured by hand
 * (one thread), the flynn-ts router on the node engine (one process) and on the haproxy engine,
 * all in front of the same two backend processes, in one run with alternating rounds. Prints req/s,
 * p50/p99 latency, the ratios to nginx, and the change-visibility times of both engines (route
 * add -> first 200, backend add -> first hit). Installs nothing: if wrk, nginx or haproxy is
 * missing it says what to apt-get install and exits non-zero.
 *
 *   npm run bench -- router                 # 3 rotated rounds of wrk -t2 -c50 -d10s per proxy, medians
 *   BENCH_DURATION=5s BENCH_CONNECTIONS=100 BENCH_ROUNDS=5 npm run bench -- router
 *   BENCH_CPU_PROF=/tmp/prof npm run bench -- router   # node --cpu-prof of the router process
 *   BENCH_ROUTER_NODE_FLAGS='--max-semi-space-size=16' npm run bench -- router   # node flags for the router
 *   BENCH_ONLY=node npm run bench -- router      # nginx and the named contestants only (comma-separated)
 *   BENCH_VISIBILITY_ROUNDS=0 npm run bench -- router   # skip the change-visibility part
 *
 * Besides req/s it prints the CPU time each proxy (with its worker processes) spent per 10k
 * requests, from /proc: on a machine shared with other work, req/s falls with the load while CPU
 * per request barely moves, so `cpu/req` ratios to nginx are the steadier figure.
 *
 * The same file is also the child processes (`--backend`, `--router`), so the bench is one file.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../src/host/testing/jobs.js';
import { treeCpuMs } from './cpu.js';
import { HOST, startHaproxy, startNginx } from './proxies.js';
import { measureVisibility } from './visibility.js';

const CONTESTANTS = ['nginx', 'haproxy', 'node', 'node-workers', 'haproxy-engine'] as const;
type Contestant = (typeof CONTESTANTS)[number];
/** The flynn-ts routers among them. */
const ROUTERS = ['node', 'node-workers', 'haproxy-engine'] as const;
const LABEL: Record<Contestant, string> = { nginx: 'nginx 1 worker    ', haproxy: 'haproxy 1 thread  ', node: 'node engine       ', 'node-workers': 'node, 2 workers   ', 'haproxy-engine': 'haproxy engine    ' };

const self = fileURLToPath(import.meta.url);
const BODY = 'hello from the backend\n'.repeat(4);

async function runBackend(host: string): Promise<void> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(BODY) });
    res.end(BODY);
  });
  server.keepAliveTimeout = 65_000;
  server.listen(0, host, () => process.stdout.write(`PORT ${(server.address() as AddressInfo).port}\n`));
}

async function runRouter(engine: 'node' | 'haproxy', workers: number, addrs: string[]): Promise<void> {
  const { createDiscovery } = await import('../../src/discovery/index.js');
  const { MemoryRouteSource, startRouter } = await import('../../src/router/index.js');
  const discovery = createDiscovery({ backend: 'memory' });
  for (const addr of addrs) await discovery.register({ service: 'bench-web', addr, ttlMs: 3_600_000 });
  const routes = new MemoryRouteSource([{ id: 'bench', type: 'http', domain: HOST, service: 'bench-web' }]);
  const router = await startRouter({ discovery, routes, http: { host: '127.0.0.1', port: 0 }, engine, ...(workers > 1 ? { workers } : {}) });
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
    // Generous: on a loaded machine two cluster workers importing the router through tsx take a while.
    const timer = setTimeout(() => reject(new Error(`${what} did not start in 60s`)), 60_000);
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
  /** The proxy's CPU ms (user + system, its processes together) per 10k requests. */
  cpuPer10k: number;
  errors: string;
}

function toMs(value: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(value.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : n * 60_000;
}

function wrk(port: number, duration: string, connections: string, pid?: number): WrkResult {
  const cpuBefore = pid === undefined ? 0 : treeCpuMs(pid);
  const args = ['-t2', `-c${connections}`, `-d${duration}`, '--latency', '-H', `Host: ${HOST}`, `http://127.0.0.1:${port}/`];
  const run = spawnSync('wrk', args, { encoding: 'utf8', timeout: 120_000 });
  const out = run.stdout ?? '';
  if (run.status !== 0) throw new Error(`wrk failed: ${run.stderr}`);
  const cpuMs = pid === undefined ? NaN : treeCpuMs(pid) - cpuBefore;
  const requests = Number(/(\d+) requests in/.exec(out)?.[1]);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const p50 = toMs(/^\s+50%\s+(\S+)/m.exec(out)?.[1] ?? '');
  const p99 = toMs(/^\s+99%\s+(\S+)/m.exec(out)?.[1] ?? '');
  const errors = [/Socket errors:.*/.exec(out)?.[0], /Non-2xx or 3xx responses:.*/.exec(out)?.[0]].filter(Boolean).join('; ');
  return { rps, p50ms: p50, p99ms: p99, cpuPer10k: (cpuMs / requests) * 10_000, errors };
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
    cpuPer10k: median(results.map((r) => r.cpuPer10k)),
    errors: results.map((r) => r.errors).filter(Boolean).join(' | '),
  };
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

const fmt = (r: WrkResult) => `${r.rps.toFixed(0).padStart(8)} req/s   p50 ${r.p50ms.toFixed(2).padStart(7)} ms   p99 ${r.p99ms.toFixed(2).padStart(7)} ms   cpu ${r.cpuPer10k.toFixed(0).padStart(5)} ms/10k req${r.errors ? `   (${r.errors})` : ''}`;

async function main(): Promise<number> {
  const missing = ['wrk', 'nginx', 'haproxy'].filter((bin) => !has(bin));
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

    // nginx is always measured (every ratio is to it); BENCH_ONLY picks the others.
    const only = process.env.BENCH_ONLY?.split(',').map((c) => c.trim());
    const unknown = only?.filter((c) => !(CONTESTANTS as readonly string[]).includes(c));
    if (unknown && unknown.length > 0) throw new Error(`BENCH_ONLY: unknown contestant ${unknown.join(', ')}; have ${CONTESTANTS.join(', ')}`);
    const contestants = CONTESTANTS.filter((c) => c === 'nginx' || !only || only.includes(c));
    const routers = ROUTERS.filter((c) => contestants.includes(c));
    const ports = {} as Record<Contestant, number>;
    const pids = {} as Record<Contestant, number | undefined>;
    const track = (c: Contestant, child: ChildProcess) => {
      children.push(child);
      pids[c] = child.pid;
    };
    ports.nginx = await freePort('127.0.0.1');
    track('nginx', await startNginx(dir, ports.nginx, backends));
    if (contestants.includes('haproxy')) {
      ports.haproxy = await freePort('127.0.0.1');
      track('haproxy', await startHaproxy(dir, ports.haproxy, backends));
    }
    for (const c of routers) {
      const [engine, workers] = c === 'node' ? ['node', 1] : c === 'node-workers' ? ['node', 2] : ['haproxy', 1];
      const router = spawnSelf(['--router', engine, String(workers), ...backends], [...routerFlags, ...(profDir && c === 'node' ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [])]);
      track(c, router);
      ports[c] = await waitPort(router, `router (${c})`);
    }
    if (routerFlags.length > 0) console.log(`router node flags: ${routerFlags.join(' ')}`);

    // All stay up (idle while another is measured); each round runs them in a rotated order.
    for (const c of contestants) wrk(ports[c], warmup, connections);
    const results = Object.fromEntries(contestants.map((c) => [c, [] as WrkResult[]])) as Record<Contestant, WrkResult[]>;
    for (let round = 0; round < rounds; round++) {
      const order = contestants.map((_, i) => contestants[(i + round) % contestants.length] as Contestant);
      for (const c of order) results[c].push(wrk(ports[c], duration, connections, pids[c]));
      console.log(`round ${round + 1} (order ${order.join(', ')}; load avg ${loadavg()[0]?.toFixed(1)})`);
      const n = results.nginx[round] as WrkResult;
      for (const c of contestants) {
        const r = results[c][round] as WrkResult;
        console.log(`  ${LABEL[c]} ${fmt(r)}${c === 'nginx' ? '' : `   vs nginx req/s ${(r.rps / n.rps).toFixed(2)}x p99 ${(r.p99ms / n.p99ms).toFixed(2)}x cpu/req ${(r.cpuPer10k / n.cpuPer10k).toFixed(2)}x`}`);
      }
    }
    console.log(`median of ${rounds} round(s):`);
    const med = Object.fromEntries(contestants.map((c) => [c, medianOf(results[c])])) as Record<Contestant, WrkResult>;
    for (const c of contestants) console.log(`${LABEL[c]} ${fmt(med[c])}`);
    const mn = med.nginx;
    for (const c of routers) console.log(`${c}/nginx: req/s ${(med[c].rps / mn.rps).toFixed(2)}x, p99 ${(med[c].p99ms / mn.p99ms).toFixed(2)}x, cpu/req ${(med[c].cpuPer10k / mn.cpuPer10k).toFixed(2)}x (lower is better)`);
    const best = routers.reduce((a, b) => (med[b].rps > med[a].rps ? b : a));
    console.log(`router/nginx: req/s ${(med[best].rps / mn.rps).toFixed(2)}x (goal >= 1.0x; best: ${best}), p99 ${(med[best].p99ms / mn.p99ms).toFixed(2)}x (goal <= 1.5x)`);
    if (rounds > 1) {
      for (const c of routers) {
        const rr = results[c].map((r, i) => r.rps / (results.nginx[i] as WrkResult).rps);
        const cr = results[c].map((r, i) => r.cpuPer10k / (results.nginx[i] as WrkResult).cpuPer10k);
        console.log(`per-round ratios, ${c}: req/s ${rr.map((x) => x.toFixed(2)).join(' ')} (median ${median(rr).toFixed(2)}x); cpu/req ${cr.map((x) => x.toFixed(2)).join(' ')} (median ${median(cr).toFixed(2)}x)`);
      }
    }
    for (const child of children.splice(2)) await stop(child);

    // Change visibility, in this process (the routers above are stopped).
    const visRounds = Number(process.env.BENCH_VISIBILITY_ROUNDS ?? '20');
    for (const engine of visRounds > 0 ? (['node', 'haproxy'] as const) : []) {
      const v = await measureVisibility(engine, visRounds);
      const stat = (xs: number[]) => `median ${median(xs).toFixed(1)} ms, max ${Math.max(...xs).toFixed(1)} ms`;
      console.log(`change visibility, ${engine} engine (${visRounds} each): route add -> first 200 ${stat(v.routeMs)}; backend add -> first hit ${stat(v.backendMs)} (goal <= 50 ms)`);
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
else if (mode === '--router') void runRouter(rest[0] === 'haproxy' ? 'haproxy' : 'node', Number(rest[1]), rest.slice(2));
else
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
