/**
 * The end-to-end cluster: host agents as their own processes (`examples/host/main.ts`, Docker
 * runtime, etcd discovery), the platform on the same etcd prefix with no local host, the real
 * `flynn` CLI as a process and the real `git` over SSH. Everything started here is stopped by pid,
 * by this run's container label or by this run's etcd prefix.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import Dockerode from 'dockerode';
import { Etcd3 } from 'etcd3';
import { bootstrap, parseManifest, type BootstrapHandle } from '../../src/bootstrap/index.js';
import { createConsoleLogger, type Logger } from '../../src/common/logger.js';
import { getVia } from '../bootstrap/deploy-scenario.js';
import { etcdEndpoints } from '../support/services.js';
import { componentKey } from '../../src/common/http/key-auth.js';

const ROOT = resolve(import.meta.dirname, '../..');
// `--import tsx` resolves from the cwd; the CLI runs in the app's work tree, so point at the loader itself.
const TSX = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;

/**
 * Registration TTL of the host agents (and of their jobs' services), in ms: a SIGKILLed host is
 * noticed within it. Not the scheduler suites' 2 s: on a loaded 2-core machine etcd keepalives can
 * stall that long, and every job registration of the cluster would lapse at once.
 */
export const HOST_TTL_MS = 5000;

/** One e2e run: its id (the containers' `io.flynn-ts.test-run` label) and its etcd prefix. */
export interface E2eRun {
  run: string;
  prefix: string;
  /** The cluster key (the host agents get the host key derived from it). */
  key: string;
}

export function newRun(): E2eRun {
  const run = `e2e-${randomBytes(4).toString('hex')}`;
  return { run, prefix: `/flynn-ts-test/${run}`, key: randomBytes(24).toString('hex') };
}

/**
 * The platform, as flynn-bootstrap starts it from a YAML manifest onto the running layer 0: shelf,
 * scheduler, router, git receiver and controller (etcd store) on the run's etcd prefix, once the 3
 * host agents registered there; builds run in Docker with the run's labels.
 */
export async function startPlatformForTest(r: E2eRun, logger?: Logger): Promise<BootstrapHandle> {
  const manifest = parseManifest(`
discovery: { backend: etcd, endpoints: ${JSON.stringify(etcdEndpoints)}, prefix: ${r.prefix} }
waitHosts: { min: 3, timeoutMs: 60000 }
key: ${r.key}
listen: 127.0.0.1
build: docker
controller: { port: 0, store: { backend: etcd, prefix: ${r.prefix}/controller/ } }
router: { port: 0 }
git: { port: 0 }
shelf: { port: 0 }
labels: { io.flynn-ts.test: "1", io.flynn-ts.test-run: ${r.run} }
`);
  return bootstrap(manifest, logger ? { logger } : {});
}

/** A host agent process (`examples/host/main.ts`). */
export interface HostProc {
  /** Its host id, unique to the run. */
  id: string;
  ip: string;
  proc: ChildProcess;
  alive(): boolean;
}

/**
 * Spawn a host agent on `ip`: Docker runtime, etcd discovery under the run's prefix, its containers
 * labelled with the run, JSON logs on stderr. Ready once the platform's scheduler sees it.
 */
export function spawnHostAgent(r: E2eRun, name: string, ip: string): HostProc {
  const id = `${name}-${r.run}`;
  const args = ['--import', TSX, 'examples/host/main.ts', '--id', id, '--advertise-addr', ip, '--listen', `${ip}:0`, '--runtime', 'docker'];
  args.push('--discovery', 'etcd', '--etcd-endpoints', etcdEndpoints.join(','), '--etcd-prefix', r.prefix, '--registration-ttl', String(HOST_TTL_MS), '--json-logs');
  args.push('--container-labels', `io.flynn-ts.test=1,io.flynn-ts.test-run=${r.run}`);
  const proc = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, FLYNN_HOST_KEY: componentKey(r.key, 'host') } });
  return { id, ip, proc, alive: () => proc.exitCode === null && proc.signalCode === null };
}

/** Force-remove the containers of this run that one host agent started (a dead machine takes its containers with it). */
export async function removeHostContainers(r: E2eRun, hostId: string): Promise<number> {
  const docker = new Dockerode();
  const found = await docker.listContainers({ all: true, filters: { label: ['io.flynn-ts.test=1', `io.flynn-ts.test-run=${r.run}`, `io.flynn-ts.host=${hostId}`] } });
  await Promise.all(found.map((c) => docker.getContainer(c.Id).remove({ force: true })));
  return found.length;
}

/** Delete every etcd key under the run's prefix. */
export async function deleteEtcdPrefix(r: E2eRun): Promise<void> {
  const etcd = new Etcd3({ hosts: etcdEndpoints });
  try {
    await etcd.delete().prefix(`${r.prefix}/`);
  } finally {
    etcd.close();
  }
}

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a command to completion; never rejects (a non-zero exit is in `code`). */
export function runProc(file: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<Result> {
  return new Promise((done) => {
    const child = execFile(file, args, { cwd: options.cwd, env: options.env, encoding: 'utf8', timeout: options.timeoutMs ?? 60_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      done({ code, stdout, stderr });
    });
    child.stdin?.end();
  });
}

/** The real `flynn` CLI as a process (`node --import tsx src/cli/main.ts`). */
export function flynn(args: string[], options: { cwd: string; env: NodeJS.ProcessEnv }): Promise<Result> {
  return runProc(process.execPath, ['--import', TSX, join(ROOT, 'src/cli/main.ts'), ...args], options);
}

/** `ssh-agent -D` on a socket in `dir`, holding `keyFile`: git's ssh authenticates the way a user's does. */
export async function startSshAgent(dir: string, keyFile: string): Promise<{ sock: string; close(): Promise<void> }> {
  const sock = join(dir, 'agent.sock');
  const proc = spawn('ssh-agent', ['-D', '-a', sock], { stdio: ['ignore', 'ignore', 'pipe'] });
  const failed = new Promise<never>((_, ko) => proc.once('exit', (code) => ko(new Error(`ssh-agent exited with ${code}`))));
  failed.catch(() => {});
  const env = { ...process.env, SSH_AUTH_SOCK: sock };
  const deadline = Date.now() + 5000;
  for (;;) {
    const added = await Promise.race([runProc('ssh-add', [keyFile], { cwd: dir, env }), failed]);
    if (added.code === 0) return { sock, close: () => stopChild(proc) };
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`ssh-add failed: ${added.stderr.trim()}`);
    }
    await new Promise((ok) => setTimeout(ok, 50));
  }
}

/** SIGTERM a child this suite spawned (SIGKILL after `graceMs`) and wait for it to exit. */
export async function stopChild(proc: ChildProcess, graceMs = 5000): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** GET through the router with `Host: <host>`; a connection error answers status 0 (with the error as body). */
export function getOrZero(routerUrl: string, host: string): Promise<{ status: number; body: string }> {
  return getVia(routerUrl, host).catch((err: Error) => ({ status: 0, body: err.message }));
}

export { getVia, until } from '../bootstrap/deploy-scenario.js';

/** The job id the app fixture prints (`... job <FLYNN_JOB_ID>`). */
export function answeringJob(body: string): string | undefined {
  return /job (\S+)/.exec(body)?.[1];
}

/** Poll through the router until `stop()` resolves; failures (status 0: no HTTP answer) with the ms since the start. */
export function pollRouter(routerUrl: string, host: string, everyMs = 20): { stop(): Promise<{ ok: number; failed: { atMs: number; status: number; body: string }[] }> } {
  let polling = true;
  let ok = 0;
  const t0 = Date.now();
  const failed: { atMs: number; status: number; body: string }[] = [];
  const loop = (async () => {
    while (polling) {
      const r = await getOrZero(routerUrl, host);
      if (r.status === 200) ok++;
      else failed.push({ atMs: Date.now() - t0, ...r });
      await new Promise((res) => setTimeout(res, everyMs));
    }
  })();
  return {
    stop: async () => {
      polling = false;
      await loop;
      return { ok, failed };
    },
  };
}

/**
 * The warnings and errors of the platform and the host agent processes, with their times, for the
 * message of a failed assertion (what the cluster saw while a request failed).
 */
export class Journal {
  readonly lines: string[] = [];

  /** A JSON logger for the platform whose warn/error lines land here. */
  logger(name: string): Logger {
    return createConsoleLogger({ level: 'warn', json: true, write: (line) => this.lines.push(`${name} ${line}`) });
  }

  /** Keep the warn/error lines of a process's JSON log stream. */
  follow(name: string, stream: Readable): void {
    createInterface({ input: stream }).on('line', (line) => {
      if (/"level":"(warn|error)"/.test(line)) this.lines.push(`${name} ${line}`);
    });
  }

  toString(): string {
    return this.lines.length === 0 ? '(no warnings from the cluster)' : this.lines.slice(-40).join('\n');
  }
}
