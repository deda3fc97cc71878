/**
 * What each piece of the haproxy engine's generated configuration costs. Runs wrk through nginx's
 * worker, HAProxy by hand, the haproxy engine (a router process: HAProxy driven live, its ejector
 * polling), and copies of the engine's configuration started by this bench with static servers,
 * each with one piece taken out, all in front of the same two backends, in rotated rounds. Prints
 * req/s, p99 and CPU time per 10k requests (utime+stime from /proc) of each, and the ratios to
 * nginx and to the full copy: CPU per request moves much less with the machine's load than req/s.
 *
 *   node --import tsx bench/router/haproxy-cost.ts          # 3 rounds of wrk -t2 -c50 -d5s each
 *   BENCH_ROUNDS=5 BENCH_DURATION=10s node --import tsx bench/router/haproxy-cost.ts
 *   BENCH_VARIANTS=full,no-request-id node --import tsx bench/router/haproxy-cost.ts
 *   BENCH_NGINX_BARE=1 ...   # also nginx without the router's header work (the bench's reference before 2026-12-05)
 *
 * `full+ejector` is the full copy with this process reading its counters every EJECT_POLL_MS,
 * as the engine's ejector does; its line also gives this process's CPU (the poller's side).
 *
 *   BENCH_MODE=instructions node --import tsx bench/router/haproxy-cost.ts
 *
 * counts instead the CPU instructions each proxy runs per request, under valgrind's callgrind
 * (apt-get install valgrind): nginx's worker (`master_process off`), HAProxy by hand and each
 * variant serve BENCH_REQUESTS (2000) keep-alive GETs on 10 connections after a warm-up. The count does not move with the machine's load, so pieces
 * that cost a few per cent, lost in the noise of req/s and CPU time, are told apart.
 * BENCH_CALLGRIND_DIR=<dir> keeps each variant's profile there (callgrind_annotate reads it). A
 * count is not a time: a `rep movsb` copy counts one instruction per byte. BENCH_MODE=syscalls
 * counts system calls per request instead (strace -c), BENCH_MODE=polls times the ejector's `show
 * stat` poll alone (BENCH_POLLS of them back to back, no traffic).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../src/host/testing/jobs.js';
import { silentLogger } from '../../src/common/logger.js';
import { BAD_REQUEST, haproxyConfig, HOP_BY_HOP_LUA, HOST_ERRORS, mapFiles } from '../../src/router/haproxy/config.js';
import { EJECT_POLL_MS, ResetEjector } from '../../src/router/haproxy/ejector.js';
import { RuntimeApi, waitForSocket } from '../../src/router/haproxy/runtime-api.js';
import { routerConfig, type RouterOptions } from '../../src/router/options.js';
import { treeCpuMs } from './cpu.js';
import { handHaproxyConfig, HOST, nginxConfig, startHaproxy, startNginx } from './proxies.js';

const main = fileURLToPath(new URL('./main.ts', import.meta.url));

/** A change to the engine's configuration text: one piece taken out (or done the cheaper way). */
type Edit = (cfg: string) => string;
const drop =
  (...res: RegExp[]): Edit =>
  (cfg) =>
    cfg
      .split('\n')
      .filter((line) => !res.some((re) => re.test(line)))
      .join('\n');

/** Each variant is the full configuration with one edit; `full` has none. */
const VARIANTS: Record<string, Edit> = {
  full: (cfg) => cfg,
  'no-request-id': drop(/x-request-id/),
  'no-request-start': drop(/x-request-start/),
  'no-forwarded': drop(/-header forwarded/),
  'no-x-forwarded': drop(/option forwardfor/, /x-forwarded-(proto|port)/),
  // The route lookup (host normalised, map_beg, wildcard levels) replaced by the slot's name.
  'no-route-lookup': (cfg) =>
    drop(/set-var\(txn\.slot\) .*unless/, /set-var\(txn\.host\) var\(txn\.host\)/, /acme-challenge/)(cfg).replace(/http-request set-var\(txn\.slot\) .*/, 'http-request set-var(txn.slot) str(p0)'),
  'no-edge-rules': drop(/req\.hdr_cnt\(host\)/, /url \*/, /lua\.flynn_hop/, /del-header (proxy-connection|keep-alive)/),
  'no-l7-retry': drop(/retry-on/, /disable-l7-retry/, /^\s+retries /, /option redispatch/),
  'no-timeout-maps': drop(/set-timeout/),
  'no-checks': (cfg) => cfg.replace(/ check inter .*$/gm, ''),
  'no-abortonclose': drop(/option abortonclose/),
  'random(2)': (cfg) => cfg.replace(/balance leastconn/g, 'balance random(2)'),
  'one-slot': (cfg) => cfg.replace(/\n\nbackend (?!p0\n)[\s\S]*?(?=\n\nbackend |\n*$)/g, ''),
  'bufsize-8k': (cfg) => cfg.replace(/^global\n/, 'global\n  tune.bufsize 8192\n'),
  'full+ejector': (cfg) => cfg,
};

/** The engine's configuration for `backends` as the router writes it, with the servers in the file instead of added live. */
function engineConfig(dir: string, port: number, backends: string[], edit: Edit): string {
  const config = routerConfig({ discovery: {}, routes: {}, http: { host: '127.0.0.1', port }, engine: 'haproxy' } as unknown as RouterOptions);
  for (const file of Object.values(mapFiles(dir))) writeFileSync(file, '');
  writeFileSync(mapFiles(dir).routes, `${HOST}/ p0\n`);
  writeFileSync(join(dir, 'hop-by-hop.lua'), HOP_BY_HOP_LUA);
  writeFileSync(join(dir, '400.http'), BAD_REQUEST);
  writeFileSync(join(dir, 'host-error.map'), HOST_ERRORS);
  // As SlotSync.addServer adds them.
  const check = `check inter ${config.baseEjectionMs} downinter ${config.baseEjectionMs} fall 1 rise 1 observe layer7 error-limit ${config.ejectAfterFailures} on-error mark-down`;
  const servers = backends.map((b, i) => `  server b${i} ${b} pool-max-conn -1 pool-purge-delay 5s ${check}`).join('\n');
  const cfg = haproxyConfig({ listening: true, dir, socket: join(dir, 'admin.sock'), http: { host: '127.0.0.1', port }, config }).replace('backend p0\n', `backend p0\n${servers}\n`);
  return edit(cfg);
}

/** The first process below `pid` named `comm` (the router's HAProxy). */
function descendant(pid: number, comm: string): number | undefined {
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    for (const child of readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').split(' ').filter(Boolean).map(Number)) {
      if (readFileSync(`/proc/${child}/comm`, 'utf8').trim() === comm) return child;
      const deeper = descendant(child, comm);
      if (deeper !== undefined) return deeper;
    }
  }
  return undefined;
}

function spawnMain(args: string[]): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', main, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
}

function port(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /PORT (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`child exited with ${code}`)));
  });
}

interface Result {
  rps: number;
  p99ms: number;
  /** The proxy's CPU ms per 10k requests. */
  cpu: number;
  /** This process's CPU ms per 10k requests (the poller of `full+ejector`). */
  own: number;
  /** The router process's own CPU ms per 10k requests (the engine's ejector and the rest), apart from its HAProxy's. */
  router: number;
}

const toMs = (v: string) => {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v);
  return m ? Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1) : NaN;
};

/** wrk in a child process, so that this process's event loop (the poller) runs meanwhile. */
async function wrk(p: number, duration: string, pid?: number, routerPid?: number): Promise<Result> {
  const before = pid === undefined ? 0 : treeCpuMs(pid);
  const routerBefore = routerPid === undefined ? 0 : treeCpuMs(routerPid);
  const own = process.cpuUsage();
  const child = spawn('wrk', ['-t2', '-c50', `-d${duration}`, '--latency', '-H', `Host: ${HOST}`, `http://127.0.0.1:${p}/`], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  await new Promise((r) => child.once('exit', r));
  const ownUs = process.cpuUsage(own);
  const requests = Number(/(\d+) requests in/.exec(out)?.[1]);
  if (/Non-2xx/.test(out)) throw new Error(`non-2xx answers from port ${p}:\n${out}`);
  const per10k = (ms: number) => (ms / requests) * 10_000;
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]),
    p99ms: toMs(/^\s+99%\s+(\S+)/m.exec(out)?.[1] ?? ''),
    cpu: pid === undefined ? NaN : per10k(treeCpuMs(pid) - before),
    own: per10k((ownUs.user + ownUs.system) / 1000),
    // The whole tree less its HAProxy.
    router: routerPid === undefined ? NaN : per10k(treeCpuMs(routerPid) - routerBefore) - per10k(treeCpuMs(pid as number) - before),
  };
}

interface Contestant {
  name: string;
  port: number;
  /** HAProxy's or nginx's worker's pid. */
  pid: number;
  /** The router process above the engine's HAProxy. */
  routerPid?: number;
}

/** `total` keep-alive GETs over `connections` sockets, one at a time on each (as wrk sends them); rejects on a non-200. */
async function requests(p: number, connections: number, total: number): Promise<void> {
  const one = (count: number) =>
    new Promise<void>((resolve, reject) => {
      const socket = connect(p, '127.0.0.1');
      let left = count;
      let buf = '';
      const send = () => socket.write(`GET / HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
      socket.setEncoding('latin1');
      socket.on('connect', send);
      socket.on('error', reject);
      socket.on('data', (chunk: string) => {
        buf += chunk;
        for (;;) {
          const head = buf.indexOf('\r\n\r\n');
          if (head < 0) return;
          const length = Number(/content-length: *(\d+)/i.exec(buf.slice(0, head))?.[1] ?? 0);
          if (buf.length < head + 4 + length) return;
          if (!buf.startsWith('HTTP/1.1 200')) return reject(new Error(`not 200: ${buf.slice(0, 200)}`));
          buf = buf.slice(head + 4 + length);
          if (--left === 0) {
            socket.end();
            return resolve();
          }
          send();
        }
      });
    });
  await Promise.all(Array.from({ length: connections }, (_, i) => one(Math.floor(total / connections) + (i < total % connections ? 1 : 0))));
}

/** nginx as the bench had it before it did the router's header work (BENCH_NGINX_BARE=1): X-Forwarded-* only, no Host routing. */
const bareNginx = (cfg: string) =>
  cfg
    .replace(/\n {2}map [\s\S]*?\n {2}}/g, '')
    .replace(/\n {2}server {\n {4}listen \S+ default_server;\n {4}return 404;\n {2}}/, '')
    .replace(/\n {4}server_name .*;/, '')
    .replace(/\n {6}proxy_set_header (X-Request-Id|X-Request-Start|Forwarded) .*;/g, '');

/** The two backend processes every variant proxies to (added to `procs`, to be ended by the caller), as `host:port`. */
async function startBackends(procs: ChildProcess[]): Promise<string[]> {
  const backends: string[] = [];
  for (const host of ['127.0.0.2', '127.0.0.3']) {
    const child = spawnMain(['--backend', host]);
    procs.push(child);
    backends.push(`${host}:${await port(child)}`);
  }
  return backends;
}

/** Instructions per request of each variant (and HAProxy by hand), counted by callgrind. */
async function instructions(): Promise<void> {
  const total = Number(process.env.BENCH_REQUESTS ?? '2000') || 2000;
  const keep = process.env.BENCH_CALLGRIND_DIR;
  const picked = ['nginx', ...(process.env.BENCH_NGINX_BARE ? ['nginx-bare'] : []), 'hand', ...(process.env.BENCH_VARIANTS?.split(',').map((v) => v.trim()) ?? Object.keys(VARIANTS))];
  const dir = mkdtempSync(join(tmpdir(), 'flynn-haproxy-ir-'));
  const procs: ChildProcess[] = [];
  try {
    const backends = await startBackends(procs);
    const counts: Record<string, number> = {};
    for (const variant of picked) {
      const vdir = join(dir, variant.replace(/[^a-z0-9+-]/g, '_'));
      mkdirSync(vdir);
      const p = await freePort('127.0.0.1');
      const cfg = join(vdir, 'haproxy.cfg');
      // nginx's worker as one process (`master_process off`), so that the tool sees the process that serves.
      if (variant.startsWith('nginx')) writeFileSync(cfg, (variant === 'nginx-bare' ? bareNginx : (c: string) => c)(nginxConfig(vdir, p, backends).replace('daemon off;', 'daemon off;\nmaster_process off;')));
      else writeFileSync(cfg, variant === 'hand' ? handHaproxyConfig(p, backends) : engineConfig(vdir, p, backends, VARIANTS[variant] as Edit));
      const out = join(vdir, 'callgrind.out');
      const syscalls = process.env.BENCH_MODE === 'syscalls';
      const tool = syscalls ? ['strace', '-c', '-o', out] : ['valgrind', '--tool=callgrind', `--callgrind-out-file=${out}`];
      const server = variant.startsWith('nginx') ? ['nginx', '-p', vdir, '-c', cfg] : ['haproxy', '-db', '-f', cfg];
      const child = spawn(tool[0] as string, [...tool.slice(1), ...server], { stdio: ['ignore', 'ignore', 'pipe'] });
      let log = '';
      child.stderr.on('data', (c: Buffer) => (log += c.toString()));
      procs.push(child);
      for (let i = 0; ; i++) {
        try {
          await requests(p, 1, 1);
          break;
        } catch (err) {
          if (i > 300 || child.exitCode !== null) throw new Error(`haproxy (${variant}) under valgrind did not answer: ${(err as Error).message}\n${log}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      let poller: NodeJS.Timeout | undefined;
      if (variant === 'full+ejector') {
        const ejector = new ResetEjector(new RuntimeApi(join(vdir, 'admin.sock')), { ejectAfterFailures: 3, baseEjectionMs: 1000, maxEjectionMs: 30_000, connectTimeoutMs: 5000, logger: silentLogger, target: () => undefined });
        poller = setInterval(() => void ejector.poll().catch(() => undefined), EJECT_POLL_MS);
      }
      await requests(p, 10, 500);
      if (!syscalls) spawnSync('callgrind_control', ['--zero', String(child.pid)]);
      await requests(p, 10, total);
      if (!syscalls) spawnSync('callgrind_control', ['--dump', String(child.pid)]);
      clearInterval(poller);
      const traced = syscalls ? descendant(child.pid as number, variant.startsWith('nginx') ? 'nginx' : 'haproxy') : undefined;
      if (traced !== undefined) process.kill(traced, 'SIGTERM');
      else child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      if (syscalls) {
        // strace counts from the start: the warm-up's requests are in, HAProxy's start-up is noise.
        const table = readFileSync(out, 'utf8');
        if (keep) copyFileSync(out, join(keep, `strace.${variant.replace(/[^a-z0-9+-]/g, '_')}`));
        // Columns: % time, seconds, usecs/call, calls, [errors,] syscall.
        const calls = (name: string) => Number(table.split('\n').map((l) => l.trim().split(/\s+/)).find((f) => f[f.length - 1] === name)?.[3] ?? 0);
        const per = (n: number) => (n / (total + 501)).toFixed(2);
        console.log(`${variant.padEnd(16)} ${per(calls('total'))} syscalls per request (${['recvfrom', 'sendto', 'epoll_wait', 'epoll_ctl', 'getsockname', 'connect'].map((c) => `${c} ${per(calls(c))}`).join(', ')})`);
        continue;
      }
      const dump = readdirSync(vdir).filter((f) => f.startsWith('callgrind.out.')).sort().pop();
      const summary = Number(/^summary: (\d+)/m.exec(dump ? readFileSync(join(vdir, dump), 'utf8') : '')?.[1]);
      // For callgrind_annotate: where each variant's instructions go.
      if (keep && dump) copyFileSync(join(vdir, dump), join(keep, `callgrind.${variant.replace(/[^a-z0-9+-]/g, '_')}`));
      const per = summary / total;
      counts[variant] = per;
      const vs = (to: string) => {
        const other = counts[to];
        return other ? ` (${(per / other).toFixed(3)}x ${to}${to === 'full' ? `, ${((per - other) / 1000).toFixed(1)}k` : ''})` : '';
      };
      console.log(`${variant.padEnd(16)} ${(per / 1000).toFixed(1).padStart(7)}k instructions per request${variant === 'nginx' ? '' : vs('nginx')}${variant.startsWith('nginx') || variant === 'hand' ? '' : vs('hand')}${['nginx', 'nginx-bare', 'hand', 'full'].includes(variant) ? '' : vs('full')}`);
    }
  } finally {
    for (const p of procs.reverse()) p.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The ejector's poll alone: HAProxy's and this process's CPU per `show stat` read, the full configuration idle. */
async function polls(): Promise<void> {
  const count = Number(process.env.BENCH_POLLS ?? '500') || 500;
  const dir = mkdtempSync(join(tmpdir(), 'flynn-haproxy-polls-'));
  const p = await freePort('127.0.0.1');
  const cfg = join(dir, 'haproxy.cfg');
  writeFileSync(cfg, engineConfig(dir, p, ['127.0.0.2:9', '127.0.0.3:9'], (c) => c.replace(/ check inter .*$/gm, '')));
  const child = spawn('haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    const api = new RuntimeApi(join(dir, 'admin.sock'));
    await waitForSocket(api, 10_000, () => (child.exitCode !== null ? 'haproxy exited' : undefined));
    const ejector = new ResetEjector(api, { ejectAfterFailures: 3, baseEjectionMs: 1000, maxEjectionMs: 30_000, connectTimeoutMs: 5000, logger: silentLogger, target: () => undefined });
    await ejector.poll();
    const before = treeCpuMs(child.pid as number);
    const own = process.cpuUsage();
    const started = Date.now();
    for (let i = 0; i < count; i++) await ejector.poll();
    const ownUs = process.cpuUsage(own);
    const ms = (x: number) => (x / count).toFixed(3);
    console.log(`${count} polls of ${SLOTS_NOTE}: HAProxy ${ms(treeCpuMs(child.pid as number) - before)} ms CPU per poll, this process ${ms((ownUs.user + ownUs.system) / 1000)} ms, ${ms(Date.now() - started)} ms wall`);
  } finally {
    child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

const SLOTS_NOTE = 'the default 4 x 128 slots, 2 servers';

async function run(): Promise<void> {
  const duration = process.env.BENCH_DURATION ?? '5s';
  const rounds = Number(process.env.BENCH_ROUNDS ?? '3') || 3;
  const picked = process.env.BENCH_VARIANTS?.split(',').map((v) => v.trim()) ?? Object.keys(VARIANTS);
  const unknown = picked.filter((v) => !(v in VARIANTS));
  if (unknown.length > 0) throw new Error(`BENCH_VARIANTS: unknown ${unknown.join(', ')}; have ${Object.keys(VARIANTS).join(', ')}`);
  const dir = mkdtempSync(join(tmpdir(), 'flynn-haproxy-cost-'));
  const procs: ChildProcess[] = [];
  const pollers: NodeJS.Timeout[] = [];
  try {
    const backends = await startBackends(procs);
    const contestants: Contestant[] = [];
    const add = (name: string, p: number, child: ChildProcess, pid = child.pid as number) => {
      procs.push(child);
      contestants.push({ name, port: p, pid, ...(pid !== child.pid ? { routerPid: child.pid as number } : {}) });
    };
    const nginxPort = await freePort('127.0.0.1');
    add('nginx worker', nginxPort, await startNginx(dir, nginxPort, backends));
    if (process.env.BENCH_NGINX_BARE) {
      const bareDir = join(dir, 'nginx-bare');
      mkdirSync(bareDir);
      const barePort = await freePort('127.0.0.1');
      writeFileSync(join(bareDir, 'nginx.conf'), bareNginx(nginxConfig(bareDir, barePort, backends)));
      const bare = spawn('nginx', ['-p', bareDir, '-c', join(bareDir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'inherit'] });
      await new Promise((r) => setTimeout(r, 500));
      add('nginx bare', barePort, bare);
    }
    const handPort = await freePort('127.0.0.1');
    add('haproxy by hand', handPort, await startHaproxy(dir, handPort, backends));
    const router = spawnMain(['--router', 'haproxy', '1', ...backends]);
    add('haproxy engine', await port(router), router, descendant(router.pid as number, 'haproxy'));
    for (const variant of picked) {
      const vdir = join(dir, variant.replace(/[^a-z0-9+-]/g, '_'));
      mkdirSync(vdir);
      const p = await freePort('127.0.0.1');
      const cfg = join(vdir, 'haproxy.cfg');
      writeFileSync(cfg, engineConfig(vdir, p, backends, VARIANTS[variant] as Edit));
      const child = spawn('haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'inherit'] });
      const api = new RuntimeApi(join(vdir, 'admin.sock'));
      await waitForSocket(api, 10_000, () => (child.exitCode !== null ? `haproxy (${variant}) exited` : undefined));
      add(variant, p, child);
      if (variant === 'full+ejector') {
        const ejector = new ResetEjector(api, { ejectAfterFailures: 3, baseEjectionMs: 1000, maxEjectionMs: 30_000, connectTimeoutMs: 5000, logger: silentLogger, target: () => undefined });
        pollers.push(setInterval(() => void ejector.poll().catch(() => undefined), EJECT_POLL_MS));
      }
    }
    for (const c of contestants) await wrk(c.port, '2s');
    const per: Record<string, Result[]> = {};
    for (let round = 0; round < rounds; round++) {
      console.log(`round ${round + 1} (load avg ${loadavg()[0]?.toFixed(1)})`);
      for (let i = 0; i < contestants.length; i++) {
        const c = contestants[(i + round) % contestants.length] as Contestant;
        const r = await wrk(c.port, duration, c.pid, c.routerPid);
        (per[c.name] ??= []).push(r);
        console.log(`  ${c.name.padEnd(16)} ${r.rps.toFixed(0).padStart(7)} req/s  p99 ${r.p99ms.toFixed(2).padStart(6)} ms  CPU ${r.cpu.toFixed(0).padStart(5)} ms/10k${c.name === 'full+ejector' ? ` (+ poller ${r.own.toFixed(1)})` : ''}${c.routerPid ? ` (+ router process ${r.router.toFixed(1)})` : ''}`);
      }
    }
    // Ratios per round (to nginx and to `full` of the same round), then their medians.
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
    const ratio = (name: string, to: string, f: (r: Result) => number) => median((per[name] ?? []).map((r, i) => f(r) / f((per[to] ?? [])[i] as Result)));
    console.log(`medians of ${rounds} rounds (load avg ${loadavg().map((l) => l.toFixed(1)).join(' ')}):`);
    for (const c of contestants) {
      const xs = per[c.name] ?? [];
      const vsFull = per.full && c.name !== 'full' ? `; vs full: cpu ${ratio(c.name, 'full', (r) => r.cpu).toFixed(2)}x req/s ${ratio(c.name, 'full', (r) => r.rps).toFixed(2)}x` : '';
      console.log(
        `${c.name.padEnd(16)} ${median(xs.map((r) => r.rps)).toFixed(0).padStart(7)} req/s  CPU ${median(xs.map((r) => r.cpu)).toFixed(0).padStart(5)} ms/10k  vs nginx: req/s ${ratio(c.name, 'nginx worker', (r) => r.rps).toFixed(2)}x p99 ${ratio(c.name, 'nginx worker', (r) => r.p99ms).toFixed(2)}x cpu ${ratio(c.name, 'nginx worker', (r) => r.cpu).toFixed(2)}x${vsFull}`,
      );
    }
  } finally {
    for (const t of pollers) clearInterval(t);
    for (const p of procs.reverse()) p.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    rmSync(dir, { recursive: true, force: true });
  }
}

void (process.env.BENCH_MODE === 'polls' ? polls() : process.env.BENCH_MODE === 'instructions' || process.env.BENCH_MODE === 'syscalls' ? instructions() : run()).then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
