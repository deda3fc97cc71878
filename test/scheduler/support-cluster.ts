/**
 * A real cluster for the scheduler suites and benchmark: host agents as their own processes
 * (`examples/host/main.ts`, process or Docker runtime), scheduler instances as their own processes
 * (`support-cluster-scheduler.ts`), discovery on etcd under a prefix unique to the run. Everything
 * it starts it stops by pid (or, for containers, by this run's labels).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import Dockerode from 'dockerode';
import { createDiscovery } from '../../src/discovery/create.js';
import type { Discovery } from '../../src/discovery/discovery.js';
import { HOST_AGENT_DEFAULTS } from '../../src/host/agent-config.js';
import { HostClient } from '../../src/host/client.js';
import type { Job } from '../../src/host/types.js';
import { JOB_LABELS } from '../../src/scheduler/host-client.js';
import type { SchedulerOptions } from '../../src/scheduler/scheduler.js';
import type { Formation, SchedulerEvent, SchedulerView } from '../../src/scheduler/types.js';
import { etcdEndpoints } from '../support/services.js';

/** Registration TTL of the host agents (their default): a SIGKILLed host is noticed within it (etcd leases are whole seconds, minimum 2 s). */
export const HOST_TTL_MS = HOST_AGENT_DEFAULTS.registrationTtlMs;

/** Scheduler timing for the real cluster: a dead leader is replaced within 2 s. */
export const CLUSTER_TIMING: NonNullable<SchedulerOptions['timing']> = {
  resyncMs: 1000,
  leaderTtlMs: 2000,
  hostRetryMs: 100,
  hostReadyTimeoutMs: 3000,
  rebalanceSettleMs: 1000,
  backoff: { immediateRestarts: 1, initialDelayMs: 300, factor: 2, maxDelayMs: 1200, resetAfterMs: 30_000 },
};

const ROOT = new URL('../../', import.meta.url).pathname;

export type RuntimeName = 'process' | 'docker';

export interface AgentOptions {
  tags?: Record<string, string>;
  memoryBytes?: number;
}

export interface Agent {
  name: string;
  id: string;
  ip: string;
  proc: ChildProcess;
  client: HostClient;
  alive: boolean;
}

export interface SchedulerProc {
  id: string;
  proc: ChildProcess;
  alive: boolean;
  leading: boolean;
  events: { at: number; event: SchedulerEvent }[];
  errors: string[];
  send(cmd: Record<string, unknown>): void;
  view(): Promise<SchedulerView>;
  /** Resolves after a full reconcile pass of this (leading) scheduler that began after the call. */
  settle(): Promise<void>;
}

/** Poll an async probe until it gives a value (not undefined/false). */
export async function until<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 15_000, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** The HTTP server job: answers `hello from <job id>` on $PORT (all interfaces). */
export const HELLO_CMD = [
  'node',
  '-e',
  `process.on('SIGTERM', () => process.exit(0)); require('http').createServer((q, s) => s.end('hello from ' + process.env.FLYNN_JOB_ID)).listen(Number(process.env.PORT));`,
];

export class RealCluster {
  readonly run = randomBytes(4).toString('hex');
  /** The key of this cluster's host agents. */
  readonly hostKey = randomBytes(16).toString('hex');
  readonly prefix = `/flynn-ts-test/sched-${this.run}`;
  readonly discovery: Discovery = createDiscovery({ backend: 'etcd', endpoints: etcdEndpoints, prefix: this.prefix });
  readonly agents = new Map<string, Agent>();
  readonly schedulers: SchedulerProc[] = [];

  constructor(readonly runtime: RuntimeName) {}

  /** An app name unique to this run (the orphan sweep finds the run's job processes by it). */
  app(name: string): string {
    return `${name}-${this.run}`;
  }

  /** A web formation of `app` running {@link HELLO_CMD}, published as `<app>-web`. */
  webFormation(app: string, web: number): Formation {
    return { app, release: 'v1', processes: { web }, spec: { web: { image: 'flynn-ts/runtime:latest', cmd: HELLO_CMD, ports: [{ port: 8080, service: `${app}-web` }] } } };
  }

  /** Spawn a host agent process on `ip` and wait until it is registered. */
  async addAgent(name: string, ip: string, options: AgentOptions = {}): Promise<Agent> {
    const id = `${name}-${this.run}`;
    const args = ['--import', 'tsx', 'examples/host/main.ts', '--id', id, '--advertise-addr', ip, '--listen', `${ip}:0`, '--runtime', this.runtime];
    args.push('--discovery', 'etcd', '--etcd-endpoints', etcdEndpoints.join(','), '--etcd-prefix', this.prefix, '--registration-ttl', String(HOST_TTL_MS), '--json-logs');
    args.push('--container-labels', `io.flynn-ts.test=1,io.flynn-ts.test-run=${this.run}`);
    if (options.tags) args.push('--tags', Object.entries(options.tags).map(([k, v]) => `${k}=${v}`).join(','));
    if (options.memoryBytes !== undefined) args.push('--memory', String(options.memoryBytes));
    const proc = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, FLYNN_HOST_KEY: this.hostKey } });
    const url = new Promise<string>((resolve, reject) => {
      const tail: string[] = [];
      createInterface({ input: proc.stderr! }).on('line', (line) => {
        tail.push(line);
        if (tail.length > 20) tail.shift();
        try {
          const entry = JSON.parse(line) as { msg?: string; api?: string };
          if (entry.msg === 'host agent up' && entry.api) resolve(entry.api);
        } catch {
          // not a log line
        }
      });
      proc.once('exit', (code) => reject(new Error(`host agent ${id} exited with ${code}: ${tail.join('\n')}`)));
    });
    const agent: Agent = { name, id, ip, proc, client: undefined as unknown as HostClient, alive: true };
    proc.once('exit', () => (agent.alive = false));
    this.agents.set(name, agent);
    agent.client = new HostClient({ url: await url, key: this.hostKey });
    await until(`${id} in discovery`, async () => (await this.discovery.instances('flynn-host')).some((i) => i.meta.id === id));
    return agent;
  }

  /** SIGKILL an agent process: its registration is left to expire, its jobs keep running as orphans. */
  killAgent(name: string): void {
    this.agents.get(name)?.proc.kill('SIGKILL');
  }

  /** SIGKILL a whole host: its agent process and its job processes (their process groups) at once. Returns the killed job ids. */
  async killHost(name: string): Promise<string[]> {
    const agent = this.agents.get(name);
    if (!agent) return [];
    const jobIds = new Set((await agent.client.listJobs()).map((j) => j.id));
    const pids = await pidsWithEnv((env) => env.some((kv) => kv.startsWith('FLYNN_JOB_ID=') && jobIds.has(kv.slice('FLYNN_JOB_ID='.length))));
    agent.proc.kill('SIGKILL');
    for (const pid of pids) {
      for (const target of [-pid, pid]) {
        try {
          process.kill(target, 'SIGKILL');
        } catch {
          // not a group leader, or gone
        }
      }
    }
    return [...jobIds];
  }

  /** Spawn a scheduler instance process. */
  async addScheduler(id: string): Promise<SchedulerProc> {
    const config = { id: `${id}-${this.run}`, endpoints: etcdEndpoints, prefix: this.prefix, hostKey: this.hostKey, timing: CLUSTER_TIMING };
    const proc = spawn(process.execPath, ['--import', 'tsx', 'test/scheduler/support-cluster-scheduler.ts'], {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'inherit'],
      env: { ...process.env, FLYNN_TEST_SCHEDULER: JSON.stringify(config) },
    });
    const views: ((v: SchedulerView) => void)[] = [];
    const settles: { resolve: () => void; reject: (err: Error) => void }[] = [];
    const s: SchedulerProc = {
      id: config.id,
      proc,
      alive: true,
      leading: false,
      events: [],
      errors: [],
      send: (cmd) => proc.stdin!.write(JSON.stringify(cmd) + '\n'),
      view: () =>
        new Promise<SchedulerView>((resolve) => {
          views.push(resolve);
          s.send({ op: 'view' });
        }),
      settle: () =>
        new Promise<void>((resolve, reject) => {
          settles.push({ resolve, reject });
          s.send({ op: 'settle' });
        }),
    };
    proc.once('exit', () => {
      s.alive = false;
      s.leading = false;
    });
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      const msg = JSON.parse(line) as { at?: number; event?: SchedulerEvent; view?: SchedulerView; settled?: boolean; error?: string };
      if (msg.event) {
        s.events.push({ at: msg.at as number, event: msg.event });
        if (msg.event.type === 'leader') s.leading = msg.event.leading;
      } else if (msg.view) views.shift()?.(msg.view);
      else if (msg.settled !== undefined) {
        const waiter = settles.shift();
        if (msg.settled) waiter?.resolve();
        else waiter?.reject(new Error(`scheduler ${config.id} did not settle: ${msg.error}`));
      }
      else if (msg.error) s.errors.push(msg.error);
    });
    this.schedulers.push(s);
    return s;
  }

  /** Send a formation command to every live scheduler (each has its own in-memory formation source). */
  broadcast(cmd: Record<string, unknown>): void {
    for (const s of this.schedulers) if (s.alive) s.send(cmd);
  }

  put(formation: Formation): void {
    this.broadcast({ op: 'put', formation });
  }

  scale(app: string, processes: Record<string, number>): void {
    this.broadcast({ op: 'scale', app, release: 'v1', processes });
  }

  leader(): SchedulerProc | undefined {
    return this.schedulers.find((s) => s.alive && s.leading);
  }

  /** Live (pending/starting/up) jobs of `app`'s `type` on the live agents, as the agents list them. */
  async liveJobs(app: string, type?: string): Promise<(Job & { host: string })[]> {
    const out: (Job & { host: string })[] = [];
    for (const agent of this.agents.values()) {
      if (!agent.alive) continue;
      for (const job of await agent.client.listJobs()) {
        if (job.meta[JOB_LABELS.app] !== app || (type !== undefined && job.meta[JOB_LABELS.type] !== type)) continue;
        if (job.state === 'pending' || job.state === 'starting' || job.state === 'up') out.push({ ...job, host: agent.name });
      }
    }
    return out;
  }

  /** Jobs of `app` that are up, per agent name. */
  async upPerHost(app: string, type?: string): Promise<Record<string, number>> {
    const per: Record<string, number> = {};
    for (const j of await this.liveJobs(app, type)) if (j.state === 'up') per[j.host] = (per[j.host] ?? 0) + 1;
    return per;
  }

  /**
   * The job ids answering at the addresses published in discovery under `service`, restricted to
   * `jobIds` when given. Each fetch is bounded; a failing one throws.
   */
  async answering(service: string, jobIds?: Set<string>): Promise<string[]> {
    const instances = (await this.discovery.instances(service)).filter((i) => !jobIds || jobIds.has(i.meta.jobId ?? ''));
    const bodies = await Promise.all(
      instances.map(async (i) => {
        const res = await fetch(`http://${i.addr}/`, { signal: AbortSignal.timeout(1000) });
        return (await res.text()).replace(/^hello from /, '');
      }),
    );
    return bodies.sort();
  }

  /**
   * Wait until exactly `count` jobs of `app` are up on the live agents and every one of them
   * answers at its published address. Returns their ids.
   */
  async allAnswering(app: string, count: number, timeoutMs = 15_000): Promise<string[]> {
    return until(
      `${count} ${app} jobs up and answering`,
      async () => {
        const up = (await this.liveJobs(app, 'web')).filter((j) => j.state === 'up');
        if (up.length !== count) return undefined;
        const ids = new Set(up.map((j) => j.id));
        const answered = await this.answering(`${app}-web`, ids);
        return answered.length === count && answered.every((id) => ids.has(id)) ? [...ids].sort() : undefined;
      },
      timeoutMs,
      10,
    );
  }

  /** Stop everything this run started: schedulers, agents, orphaned job processes, containers, etcd keys. */
  async close(): Promise<void> {
    await Promise.all(this.schedulers.map((s) => stopProc(s.proc, () => s.proc.stdin?.end())));
    await Promise.all([...this.agents.values()].map((a) => stopProc(a.proc, () => a.proc.kill('SIGTERM'))));
    await Promise.all([...this.agents.values()].map((a) => a.client?.close().catch(() => {})));
    if (this.runtime === 'process') await killOrphans(this.run);
    else await removeContainers([...this.agents.values()].map((a) => a.id));
    await this.discovery.close();
  }
}

async function stopProc(proc: ChildProcess, ask: () => void): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  ask();
  const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/**
 * SIGKILL the job processes a SIGKILLed agent left behind (the process runtime starts each job in
 * its own process group, so they outlive the agent): found by `FLYNN_APP` containing this run's id.
 * Returns their pids.
 */
export async function orphanPids(run: string): Promise<number[]> {
  return pidsWithEnv((env) => env.some((kv) => kv.startsWith('FLYNN_APP=') && kv.endsWith(`-${run}`)));
}

/** The pids of the processes whose environment (`KEY=value` strings) matches. */
async function pidsWithEnv(match: (env: string[]) => boolean): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (match((await readFile(`/proc/${entry}/environ`, 'utf8')).split('\0'))) pids.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

async function killOrphans(run: string): Promise<void> {
  for (const pid of await orphanPids(run)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Remove the containers of the given agents, by the agent's `io.flynn-ts.host` label. */
export async function removeContainers(hostIds: string[]): Promise<void> {
  const docker = new Dockerode();
  for (const id of hostIds) {
    const found = await docker.listContainers({ all: true, filters: { label: [`io.flynn-ts.host=${id}`] } }).catch(() => []);
    await Promise.all(found.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => {})));
  }
}
