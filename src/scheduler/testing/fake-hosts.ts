/**
 * Fake host agents for scheduler tests: they "run" jobs in memory with the real job states, report
 * them as events, enforce their memory capacity, can crash jobs, and can die (their registration
 * then expires like a SIGKILLed agent's).
 */
import { AsyncQueue } from '../../common/async-queue.js';
import type { Clock } from '../../common/clock.js';
import type { Discovery, Registration } from '../../discovery/discovery.js';
import { MemoryRegistry } from '../../discovery/memory-backend.js';
import { HostUnavailableError } from '../errors.js';
import { HOST_SERVICE, hostMeta, JOB_LABELS, type HostConnector, type HostInfo, type HostJob, type JobEvent, type SchedulerHost, type StartJobRequest } from '../host-client.js';
import type { JobState } from '../types.js';
import { MortalDiscovery } from './mortal-discovery.js';

export interface FakeHostOptions {
  id: string;
  /** Default `127.0.0.2:1113` style, from the host count. */
  addr?: string;
  tags?: Record<string, string>;
  /** 0: undeclared (no limit). */
  memoryBytes?: number;
  /** Registration TTL, ms. Default 1000. */
  ttlMs?: number;
}

export interface FakeClusterOptions {
  /** pending → starting → up, each step after this many ms. Default 2. */
  stepMs?: number;
  /**
   * Decides per started job whether it crashes, and after how long up (ms). Default: never.
   * E.g. `(req) => req.labels['flynn.type'] === 'flaky' ? 20 : undefined`.
   */
  crashAfterMs?: (request: StartJobRequest) => number | undefined;
  /** Every API call answers after this many ms, like a slow network. Default 0. */
  latencyMs?: number;
  /** Time of the registry's TTLs and every registration's heartbeats (give the schedulers the same one). Default the system clock. */
  clock?: Clock;
}

interface FakeJob {
  job: HostJob;
  request: StartJobRequest;
  timers: NodeJS.Timeout[];
}

/** One fake host agent. */
export class FakeHost {
  readonly jobs = new Map<string, FakeJob>();
  private readonly subscribers = new Set<AsyncQueue<JobEvent>>();
  private running = true;
  private cutOff = false;
  /** Every start request it accepted, in order. */
  readonly started: StartJobRequest[] = [];

  constructor(
    readonly info: HostInfo,
    readonly discovery: MortalDiscovery,
    readonly registration: Registration,
    private readonly options: Required<Pick<FakeClusterOptions, 'stepMs'>> & FakeClusterOptions,
  ) {}

  get id(): string {
    return this.info.id;
  }

  /** False once killed or stopped. */
  get alive(): boolean {
    return this.running;
  }

  /** Jobs in a live state (pending, starting, up). */
  live(): HostJob[] {
    return [...this.jobs.values()].map((j) => j.job).filter((j) => j.state === 'pending' || j.state === 'starting' || j.state === 'up');
  }

  /** Live jobs of one process type. */
  liveOf(type: string): HostJob[] {
    return this.live().filter((j) => j.labels[JOB_LABELS.type] === type);
  }

  /** Crash a job as if its process exited non-zero. */
  crash(jobId: string): void {
    const fj = this.jobs.get(jobId);
    if (fj && (fj.job.state === 'up' || fj.job.state === 'starting' || fj.job.state === 'pending')) this.setState(fj, 'crashed');
  }

  /** Drop a job without any event, as if the event was missed: only a relist tells. */
  forget(jobId: string): void {
    const fj = this.jobs.get(jobId);
    if (!fj) return;
    for (const t of fj.timers) clearTimeout(t);
    this.jobs.delete(jobId);
  }

  /**
   * Cut the network between the scheduler and this agent: its API refuses and its event streams
   * break, but it keeps heartbeating in discovery and its jobs keep running. `heal()` ends it.
   */
  partition(): void {
    this.cutOff = true;
    for (const q of this.subscribers) q.end(new HostUnavailableError(this.id, 'connection reset'));
    this.subscribers.clear();
  }

  heal(): void {
    this.cutOff = false;
  }

  /** SIGKILL: the agent and its jobs are gone; its registration expires after its TTL. */
  kill(): void {
    this.running = false;
    this.discovery.die();
    for (const fj of this.jobs.values()) for (const t of fj.timers) clearTimeout(t);
    this.jobs.clear();
    for (const q of this.subscribers) q.end(new HostUnavailableError(this.id, 'connection reset'));
    this.subscribers.clear();
  }

  /** Shut down cleanly: unregister (watchers see `down` at once). */
  async stop(): Promise<void> {
    await this.registration.unregister();
    this.kill();
  }

  /** A connection as the scheduler gets it through the connector. */
  connect(): SchedulerHost {
    this.assertAlive();
    let closed = false;
    const check = async () => {
      if (this.options.latencyMs) await new Promise((r) => setTimeout(r, this.options.latencyMs));
      if (closed) throw new HostUnavailableError(this.id, 'connection closed');
      this.assertAlive();
    };
    return {
      ...this.info,
      listJobs: async () => {
        await check();
        return [...this.jobs.values()].map((j) => copyJob(j.job));
      },
      startJob: async (request) => {
        await check();
        return copyJob(this.start(request));
      },
      stopJob: async (id) => {
        await check();
        this.stopJob(id);
      },
      events: (options = {}) => {
        if (closed) throw new HostUnavailableError(this.id, 'connection closed');
        this.assertAlive();
        const onAbort = () => queue.end();
        const queue: AsyncQueue<JobEvent> = new AsyncQueue<JobEvent>(() => {
          this.subscribers.delete(queue);
          options.signal?.removeEventListener('abort', onAbort);
        });
        this.subscribers.add(queue);
        if (options.signal?.aborted) queue.end();
        else options.signal?.addEventListener('abort', onAbort, { once: true });
        return queue;
      },
      close: async () => {
        closed = true;
      },
    };
  }

  private assertAlive(): void {
    if (!this.running || this.cutOff) throw new HostUnavailableError(this.id, 'connection refused');
  }

  private start(request: StartJobRequest): HostJob {
    const existing = this.jobs.get(request.id);
    if (existing) return existing.job;
    const mem = request.memoryBytes ?? 0;
    if (this.info.capacity.memoryBytes > 0 && mem > 0) {
      const used = this.live().reduce((s, j) => s + (j.memoryBytes ?? 0), 0);
      if (used + mem > this.info.capacity.memoryBytes) throw new HostUnavailableError(this.id, `out of memory: ${used} + ${mem} > ${this.info.capacity.memoryBytes}`);
    }
    const job: HostJob = { id: request.id, state: 'pending', labels: { ...request.labels } };
    if (mem > 0) job.memoryBytes = mem;
    const fj: FakeJob = { job, request, timers: [] };
    this.jobs.set(job.id, fj);
    this.started.push(request);
    this.publish(job);
    const step = this.options.stepMs;
    fj.timers.push(setTimeout(() => fj.job.state === 'pending' && this.setState(fj, 'starting'), step));
    fj.timers.push(
      setTimeout(() => {
        if (fj.job.state !== 'starting') return;
        this.setState(fj, 'up');
        const crashAfter = this.options.crashAfterMs?.(request);
        if (crashAfter !== undefined) fj.timers.push(setTimeout(() => fj.job.state === 'up' && this.setState(fj, 'crashed'), crashAfter));
      }, step * 2),
    );
    return job;
  }

  private stopJob(id: string): void {
    const fj = this.jobs.get(id);
    if (!fj || fj.job.state === 'stopping' || fj.job.state === 'down' || fj.job.state === 'crashed' || fj.job.state === 'failed') return;
    for (const t of fj.timers) clearTimeout(t);
    this.setState(fj, 'stopping');
    fj.timers.push(setTimeout(() => this.setState(fj, 'down'), this.options.stepMs));
  }

  private setState(fj: FakeJob, state: JobState): void {
    fj.job = { ...fj.job, state };
    if (state === 'down' || state === 'crashed' || state === 'failed') fj.job.endedAt = this.options.clock?.now() ?? Date.now();
    if (state === 'crashed' || state === 'down') for (const t of fj.timers) clearTimeout(t);
    this.publish(fj.job);
  }

  private publish(job: HostJob): void {
    for (const q of this.subscribers) q.push({ job: copyJob(job) });
  }
}

function copyJob(job: HostJob): HostJob {
  return { ...job, labels: { ...job.labels } };
}

/**
 * A cluster of fake hosts on one in-memory registry. Give schedulers `cluster.discovery()` handles
 * (or `cluster.mortal()` ones they can die with) and `cluster.connector`.
 */
export class FakeCluster {
  readonly registry: MemoryRegistry;
  readonly hosts = new Map<string, FakeHost>();
  /** Hosts whose registration is under way. */
  private readonly joining = new Map<string, Promise<FakeHost | undefined>>();
  private readonly handles = new Set<Discovery>();
  private readonly options: Required<Pick<FakeClusterOptions, 'stepMs'>> & FakeClusterOptions;

  constructor(options: FakeClusterOptions = {}) {
    this.options = { stepMs: 2, ...options };
    this.registry = new MemoryRegistry({ sweepIntervalMs: 20, ...(options.clock ? { clock: options.clock } : {}) });
  }

  /** A discovery handle on the cluster's registry that can `die()`. Closed with the cluster. */
  mortal(): MortalDiscovery {
    const d = new MortalDiscovery(this.registry);
    this.handles.add(d);
    return d;
  }

  /** Start a fake host agent and register it as `flynn-host`. */
  async addHost(options: FakeHostOptions): Promise<FakeHost> {
    const info: HostInfo = {
      id: options.id,
      addr: options.addr ?? `127.0.0.${2 + this.hosts.size}:1113`,
      tags: { ...options.tags },
      capacity: { memoryBytes: options.memoryBytes ?? 0 },
    };
    const discovery = this.mortal();
    // A scheduler may connect as soon as the registration is seen, before `register` returns here.
    let joined!: (host: FakeHost | undefined) => void;
    this.joining.set(info.id, new Promise((resolve) => (joined = resolve)));
    try {
      const registration = await discovery.register({ service: HOST_SERVICE, addr: info.addr, meta: hostMeta(info), ttlMs: options.ttlMs ?? 1000 });
      const host = new FakeHost(info, discovery, registration, this.options);
      this.hosts.set(info.id, host);
      joined(host);
      return host;
    } finally {
      joined(undefined);
      this.joining.delete(info.id);
    }
  }

  /** The connector to give the scheduler. */
  readonly connector: HostConnector = (info) => {
    // A host joining again under an old id is the new one, not the stopped one still in `hosts`.
    const joining = this.joining.get(info.id);
    if (joining) {
      return joining.then((h) => {
        if (!h) throw new HostUnavailableError(info.id, 'no such fake host');
        return h.connect();
      });
    }
    const host = this.hosts.get(info.id);
    if (!host) throw new HostUnavailableError(info.id, 'no such fake host');
    return host.connect();
  };

  /** Live jobs on live hosts. */
  liveJobs(type?: string): (HostJob & { hostId: string })[] {
    return [...this.hosts.values()]
      .filter((h) => h.alive)
      .flatMap((h) => (type ? h.liveOf(type) : h.live()).map((j) => ({ ...j, hostId: h.id })));
  }

  /** Jobs that are up, per host id. */
  upPerHost(type?: string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const h of this.hosts.values()) {
      if (!h.alive) continue;
      out[h.id] = (type ? h.liveOf(type) : h.live()).filter((j) => j.state === 'up').length;
    }
    return out;
  }

  async close(): Promise<void> {
    for (const h of this.hosts.values()) if (h.alive) h.kill();
    await Promise.all([...this.handles].map((d) => d.close().catch(() => {})));
    this.registry.close();
  }
}
