/**
 * CPU cost per request of the haproxy engine's HAProxy next to HAProxy configured by hand and
 * nginx's worker, in front of the same two backends (the processes of main.ts). CPU time per
 * request (utime+stime from /proc/<pid>/stat) moves much less with the machine's load than req/s,
 * so it tells whether the generated configuration costs more than the hand one.
 *
 *   node --import tsx bench/router/haproxy-cost.ts          # 3 rounds of wrk -t2 -c50 -d10s each
 *   BENCH_ROUNDS=5 BENCH_DURATION=5s node --import tsx bench/router/haproxy-cost.ts
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../src/host/testing/jobs.js';
import { startHaproxy, startNginx } from './proxies.js';

const main = fileURLToPath(new URL('./main.ts', import.meta.url));
const TICK_MS = 1000 / Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim() || 100);

/** utime+stime of a process, in ms. */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
}

function children(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** The first descendant of `pid` whose command name is `comm`. */
function descendant(pid: number, comm: string): number | undefined {
  for (const child of children(pid)) {
    if (readFileSync(`/proc/${child}/comm`, 'utf8').trim() === comm) return child;
    const deeper = descendant(child, comm);
    if (deeper !== undefined) return deeper;
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

function wrk(p: number, duration: string): { requests: number; rps: number; p99: string } {
  const out = spawnSync('wrk', ['-t2', '-c50', `-d${duration}`, '--latency', '-H', 'Host: bench.test', `http://127.0.0.1:${p}/`], { encoding: 'utf8' }).stdout;
  return { requests: Number(/(\d+) requests in/.exec(out)?.[1]), rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]), p99: /^\s+99%\s+(\S+)/m.exec(out)?.[1] ?? '?' };
}

async function run(): Promise<void> {
  const duration = process.env.BENCH_DURATION ?? '10s';
  const rounds = Number(process.env.BENCH_ROUNDS ?? '3') || 3;
  const dir = mkdtempSync(join(tmpdir(), 'flynn-haproxy-cost-'));
  const procs: ChildProcess[] = [];
  try {
    const backends: string[] = [];
    for (const host of ['127.0.0.2', '127.0.0.3']) {
      const child = spawnMain(['--backend', host]);
      procs.push(child);
      backends.push(`${host}:${await port(child)}`);
    }
    const nginxPort = await freePort('127.0.0.1');
    const nginx = await startNginx(dir, nginxPort, backends);
    procs.push(nginx);
    const handPort = await freePort('127.0.0.1');
    const hand = await startHaproxy(dir, handPort, backends);
    procs.push(hand);
    const router = spawnMain(['--router', 'haproxy', '1', ...backends]);
    procs.push(router);
    const enginePort = await port(router);
    const contestants = [
      { name: 'nginx worker   ', port: nginxPort, pid: descendant(nginx.pid as number, 'nginx') as number },
      { name: 'haproxy by hand', port: handPort, pid: hand.pid as number },
      { name: 'haproxy engine ', port: enginePort, pid: descendant(router.pid as number, 'haproxy') as number },
    ];
    for (const c of contestants) wrk(c.port, '2s');
    const per: Record<string, number[]> = {};
    for (let round = 0; round < rounds; round++) {
      console.log(`round ${round + 1} (load avg ${loadavg()[0]?.toFixed(1)})`);
      for (let i = 0; i < contestants.length; i++) {
        const c = contestants[(i + round) % contestants.length] as (typeof contestants)[number];
        const before = cpuMs(c.pid);
        const r = wrk(c.port, duration);
        const ms = ((cpuMs(c.pid) - before) / r.requests) * 10_000;
        (per[c.name] ??= []).push(ms);
        console.log(`  ${c.name} ${r.rps.toFixed(0).padStart(7)} req/s  p99 ${r.p99.padStart(8)}  CPU ${ms.toFixed(0).padStart(5)} ms per 10k requests`);
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
    const nginxMs = median(per['nginx worker   '] ?? []);
    for (const [name, xs] of Object.entries(per)) console.log(`${name} median CPU ${median(xs).toFixed(0)} ms per 10k requests (${(median(xs) / nginxMs).toFixed(2)}x nginx)`);
  } finally {
    for (const p of procs.reverse()) p.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    rmSync(dir, { recursive: true, force: true });
  }
}

void run();
