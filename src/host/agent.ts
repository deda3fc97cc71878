/**
 * The host agent (flynn-host): runs jobs through a {@link Runtime}, tracks their state machine,
 * hands out host ports, and registers itself and its jobs' services in discovery. Its HTTP API is
 * server.ts; `startHostAgent` (start.ts) wires both.
 */
import { tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { AsyncQueue } from '../common/async-queue.js';
import { after, systemClock, type Clock } from '../common/clock.js';
import { CloseGuard } from '../common/lifecycle.js';
import type { Logger } from '../common/logger.js';
import { silentLogger } from '../common/logger.js';
import type { Discovery, Registration } from '../discovery/discovery.js';
import { JobArtifacts } from './artifacts.js';
import { VolumeStore } from './volumes.js';
import { EndedJobStore, type EndedJobsOptions } from './ended-jobs.js';
import { CapacityError, HostErrorCodes, HostInputError, JobCrashedError, JobExistsError, JobNotFoundError, JobNotRunningError, jobErrorOf } from './errors.js';
import { EventFanout } from './event-fanout.js';
import { ensureJobImage } from './image-archive.js';
import { probeUntil, servesBeforeRegistering, waitUntilServing } from './readiness.js';
import { traceHost } from './trace.js';
import { PortAllocator } from './ports.js';
import { ALLOWED_SIGNALS, type JobStdio, type OutputChunk, type Runtime, type RuntimeEvent, type RuntimeJob } from './runtime.js';
import { canTransition, TERMINAL_STATES, type ExitStatus, type HostCapacity, type HostStatus, type Job, type JobError, type JobEvent, type JobState, type LogLine } from './types.js';
import { validateAdvertiseAddr, validateHostId, validateJobSpec } from './validate.js';

export const HOST_AGENT_DEFAULTS = Object.freeze({
  /** Host ports handed to jobs, inclusive. Below the Linux ephemeral range. */
  portRange: [20000, 29999] as readonly [number, number],
  /** Time between SIGTERM and SIGKILL when a job is stopped, in ms. */
  stopGraceMs: 10_000,
  /**
   * How long an ended job (and its container/logs) is kept for inspection after it ended, in ms;
   * counted from its end across agent restarts too. After that the agent answers from its record.
   */
  retainEndedMs: 5 * 60_000,
  /**
   * TTL of the agent's and its jobs' discovery registrations, in ms: a dead host's jobs leave the
   * routers and are replaced within it. 2 s is etcd's shortest lease; heartbeats go every third of
   * it, so a stall of the agent or etcd longer than ~1.3 s reads as a host loss (docs/scheduler.md).
   */
  registrationTtlMs: 2_000,
  /** State change events kept for SSE resume (`Last-Event-Id`). */
  eventBacklog: 1000,
  /** Where job artifacts are downloaded (`<artifactsDir>/<hostId>/<jobId>/slug.tgz`). */
  artifactsDir: join(tmpdir(), 'flynn-ts-artifacts'),
  /** How long downloading one artifact may take, in ms. */
  artifactTimeoutMs: 60_000,
  /** Where host volumes are kept (`<volumesDir>/<hostId>/<name>/data`); the platform puts it in its data dir. */
  volumesDir: join(tmpdir(), 'flynn-ts-volumes'),
  /** Where the agent keeps its state (`<stateDir>/<hostId>/ended`: the ended jobs, ended-jobs.ts); the platform puts it in its data dir. */
  stateDir: join(tmpdir(), 'flynn-ts-host-state'),
});

export interface HostAgentConfig {
  /** Host id: 1-63 lowercase letters, digits and dashes. Unique in the cluster. */
  id: string;
  /** IPv4 address job ports are published on and advertised at, e.g. `127.0.0.2`. */
  advertiseAddr: string;
  discovery: Discovery;
  /** Runs the jobs. The caller owns it (closes it after the agent). */
  runtime: Runtime;
  /** Free-form tags the scheduler matches on, e.g. `{ disk: 'ssd' }`. */
  tags?: Record<string, string>;
  /** Default: all of the machine's memory. */
  capacity?: Partial<HostCapacity>;
  /** Default {@link HOST_AGENT_DEFAULTS}.portRange. */
  portRange?: readonly [number, number];
  /** Default {@link HOST_AGENT_DEFAULTS}.stopGraceMs. */
  stopGraceMs?: number;
  /** Default {@link HOST_AGENT_DEFAULTS}.retainEndedMs. */
  retainEndedMs?: number;
  /** Default {@link HOST_AGENT_DEFAULTS}.registrationTtlMs. */
  registrationTtlMs?: number;
  /** Default {@link HOST_AGENT_DEFAULTS}.artifactsDir. */
  artifactsDir?: string;
  /** Default {@link HOST_AGENT_DEFAULTS}.artifactTimeoutMs. */
  artifactTimeoutMs?: number;
  /** Default {@link HOST_AGENT_DEFAULTS}.volumesDir. */
  volumesDir?: string;
  /** Default {@link HOST_AGENT_DEFAULTS}.stateDir. */
  stateDir?: string;
  /** Bounds of the ended jobs kept (lines and bytes per job, jobs, age). Default `ENDED_JOBS_DEFAULTS`. */
  endedJobs?: Omit<EndedJobsOptions, 'dir'>;
  /** Time of `retainEndedMs` and of the pauses between attempts to register again. Default the system clock. */
  clock?: Clock;
  logger?: Logger;
}

interface JobRecord {
  job: Job;
  /** Settles when `createJob` has finished starting the job (either way). */
  started: Promise<void>;
  markStarted: () => void;
  services: Registration[];
  ended: Promise<void>;
  markEnded: () => void;
  /** Cancels the removal of the ended job. */
  cancelRemoval?: () => void;
}

/** The agent's logic without its HTTP face; `startHostAgent` (start.ts) wires both. */
export class HostAgent {
  readonly id: string;
  readonly advertiseAddr: string;
  /** `host:port` of the HTTP API once listening; set by `startHostAgent`. */
  apiAddr = '';
  /** The host's volumes (volumes.ts), kept across job and agent restarts. */
  readonly volumes: VolumeStore;
  private readonly config: Required<Omit<HostAgentConfig, 'capacity' | 'logger' | 'volumesDir' | 'stateDir' | 'endedJobs'>> & { capacity: HostCapacity };
  private readonly logger: Logger;
  private readonly guard = new CloseGuard('host agent');
  private readonly jobs = new Map<string, JobRecord>();
  private readonly ports: PortAllocator;
  private readonly fanout = new EventFanout<JobEvent>();
  private readonly backlog: JobEvent[] = [];
  private readonly pendingExits = new Map<string, ExitStatus>();
  private readonly stopEvents = new AbortController();
  private seq = 0;
  private hostRegistration: Registration | undefined;
  private eventLoop: Promise<void> = Promise.resolve();
  private readonly artifacts: JobArtifacts;
  /** Ended jobs with their last lines, on disk: they outlive the runtime's copy and the agent. */
  private readonly endedStore: EndedJobStore;
  private readonly saving = new Set<Promise<void>>();

  constructor(config: HostAgentConfig) {
    this.id = validateHostId(config.id);
    this.advertiseAddr = validateAdvertiseAddr(config.advertiseAddr);
    const [first, last] = config.portRange ?? HOST_AGENT_DEFAULTS.portRange;
    if (!Number.isInteger(first) || !Number.isInteger(last) || first < 1 || last > 65535 || first > last) {
      throw new HostInputError(`portRange must be [first, last] within 1-65535, got ${JSON.stringify(config.portRange)}`, 'portRange', HostErrorCodes.INVALID_CONFIG);
    }
    const memoryBytes = config.capacity?.memoryBytes ?? totalmem();
    if (!Number.isInteger(memoryBytes) || memoryBytes <= 0) throw new HostInputError('capacity.memoryBytes must be a positive integer', 'capacity.memoryBytes', HostErrorCodes.INVALID_CONFIG);
    this.config = Object.freeze({
      id: this.id,
      advertiseAddr: this.advertiseAddr,
      discovery: config.discovery,
      runtime: config.runtime,
      tags: { ...config.tags },
      capacity: { memoryBytes },
      portRange: [first, last] as const,
      stopGraceMs: config.stopGraceMs ?? HOST_AGENT_DEFAULTS.stopGraceMs,
      retainEndedMs: config.retainEndedMs ?? HOST_AGENT_DEFAULTS.retainEndedMs,
      registrationTtlMs: config.registrationTtlMs ?? HOST_AGENT_DEFAULTS.registrationTtlMs,
      artifactsDir: config.artifactsDir ?? HOST_AGENT_DEFAULTS.artifactsDir,
      artifactTimeoutMs: config.artifactTimeoutMs ?? HOST_AGENT_DEFAULTS.artifactTimeoutMs,
      clock: config.clock ?? systemClock,
    });
    this.logger = (config.logger ?? silentLogger).child({ component: 'host', hostId: this.id });
    this.ports = new PortAllocator(this.advertiseAddr, first, last);
    this.artifacts = new JobArtifacts({ root: this.config.artifactsDir, hostId: this.id, timeoutMs: this.config.artifactTimeoutMs });
    const volumesDir = join(config.volumesDir ?? HOST_AGENT_DEFAULTS.volumesDir, this.id);
    this.volumes = new VolumeStore({ dir: volumesDir, hostId: this.id }, (name) => this.volumeUser(name));
    this.endedStore = new EndedJobStore({ ...config.endedJobs, dir: join(config.stateDir ?? HOST_AGENT_DEFAULTS.stateDir, this.id, 'ended') });
  }

  /** The live job that mounts volume `name`, if one does. */
  private volumeUser(name: string): string | undefined {
    for (const r of this.jobs.values()) if (!TERMINAL_STATES.has(r.job.state) && r.job.volumes?.some((v) => v.name === name)) return r.job.id;
    return undefined;
  }

  /** Follow runtime exits, adopt the jobs a previous agent left, and register in discovery. */
  async begin(apiAddr: string): Promise<void> {
    this.apiAddr = apiAddr;
    const events = this.config.runtime.events({ signal: this.stopEvents.signal });
    this.eventLoop = (async () => {
      for await (const event of events) this.onRuntimeEvent(event);
    })().catch((err: unknown) => this.logger.error('runtime event stream failed', { err: (err as Error).message }));
    await this.endedStore.load();
    for (const found of await this.config.runtime.recover(this.id)) await this.adopt(found);
    await this.registerHost();
  }

  async createJob(input: unknown): Promise<Job> {
    this.guard.assertOpen();
    const spec = validateJobSpec(input);
    if (this.jobs.has(spec.id)) throw new JobExistsError(spec.id);
    if (spec.volumes?.length && !this.config.runtime.mountsVolumes) {
      throw new HostInputError(`the ${this.config.runtime.name} runtime cannot mount volumes: run job ${spec.id} on a Docker host`, 'volumes', HostErrorCodes.VOLUMES_UNSUPPORTED);
    }
    const mounts = [];
    for (const v of spec.volumes ?? []) mounts.push({ source: (await this.volumes.get(v.name)).path, target: v.target, ...(v.readOnly ? { readOnly: true } : {}) });
    const want = spec.limits.memoryBytes ?? 0;
    if (want > 0 && this.allocatedMemory() + want > this.config.capacity.memoryBytes) {
      throw new CapacityError(HostErrorCodes.NO_CAPACITY, `job ${spec.id} needs ${want} bytes of memory; ${this.config.capacity.memoryBytes - this.allocatedMemory()} are free on host ${this.id}`);
    }
    const now = new Date().toISOString();
    const rec = this.record({ ...spec, hostId: this.id, state: 'pending', boundPorts: [], createdAt: now, updatedAt: now });
    this.jobs.set(spec.id, rec);
    this.emit(rec);
    traceHost('job created', spec.id);
    try {
      const hostPorts = await this.ports.allocate(spec.ports.length);
      rec.job.boundPorts = spec.ports.map((p, i) => ({ ...p, hostPort: hostPorts[i] as number }));
      const env: Record<string, string> = {
        ...spec.env,
        FLYNN_APP: spec.app,
        FLYNN_PROCESS_TYPE: spec.type,
        FLYNN_JOB_ID: spec.id,
        HOSTNAME: spec.id,
      };
      const first = rec.job.boundPorts[0];
      // Without port mapping (process runtime) the job must listen on its host port itself.
      if (first) env.PORT = String(this.config.runtime.mapsPorts ? first.port : first.hostPort);
      rec.job.env = env;
      this.transition(rec, 'starting');
      const artifactPath = spec.artifact ? await this.artifacts.fetch(spec.id, spec.artifact) : undefined;
      if (artifactPath !== undefined) traceHost('artifact fetched', spec.id);
      await ensureJobImage(this.config.runtime, spec, { timeoutMs: this.config.artifactTimeoutMs });
      const runtimeSpec = { hostId: this.id, bindAddr: this.advertiseAddr, job: { ...spec, env }, ports: rec.job.boundPorts, ...(mounts.length > 0 ? { mounts } : {}) };
      await this.config.runtime.start(artifactPath === undefined ? runtimeSpec : { ...runtimeSpec, artifactPath });
      traceHost('runtime started', spec.id);
      if (rec.job.state === 'starting') {
        this.transition(rec, 'up');
        this.registerServices(rec);
      }
    } catch (err) {
      this.ports.release(rec.job.boundPorts.map((p) => p.hostPort));
      const error = jobErrorOf(err);
      if (!TERMINAL_STATES.has(rec.job.state)) this.transition(rec, 'failed', { error });
      this.logger.warn('job failed to start', { jobId: spec.id, err: error.message });
      // Whatever the runtime got as far as creating must not linger.
      await this.config.runtime.remove(this.id, spec.id).catch(() => {});
      await this.artifacts.remove(spec.id);
    } finally {
      rec.markStarted();
    }
    return copyJob(rec.job);
  }

  listJobs(): Job[] {
    this.guard.assertOpen();
    return [...this.jobs.values()].map((r) => copyJob(r.job));
  }

  /** A job running or kept in memory, else one kept on disk since it ended. */
  getJob(id: string): Job {
    this.guard.assertOpen();
    const kept = this.jobs.has(id) ? undefined : this.endedStore.get(id);
    return copyJob(kept ? kept.job : this.get(id).job);
  }

  /** The ended jobs the agent keeps (ended-jobs.ts), in memory or on disk, oldest end first. */
  endedJobs(): Job[] {
    this.guard.assertOpen();
    const out = new Map(this.endedStore.list().map((j) => [j.id, j]));
    for (const r of this.jobs.values()) if (TERMINAL_STATES.has(r.job.state)) out.set(r.job.id, r.job);
    return [...out.values()].map(copyJob).sort((a, b) => a.updatedAt.localeCompare(b.updatedAt));
  }

  /** SIGTERM, SIGKILL after the grace period; resolves with the job once it has ended. */
  async stopJob(id: string, options: { graceMs?: number } = {}): Promise<Job> {
    this.guard.assertOpen();
    const rec = this.get(id);
    // A job still being started is stopped once the runtime has it.
    await rec.started;
    if (!TERMINAL_STATES.has(rec.job.state)) {
      if (rec.job.state !== 'stopping') {
        this.transition(rec, 'stopping');
        await this.unregisterServices(rec);
      }
      await this.config.runtime.stop(this.id, id, { graceMs: options.graceMs ?? this.config.stopGraceMs });
      const after = await this.config.runtime.inspect(this.id, id);
      // Normally the exit event ends the job; if the runtime lost it, end it from what inspect says.
      if (!after?.running) this.ended(rec, after?.exit ?? { code: 137, reason: 'killed' });
      await rec.ended;
    }
    return copyJob(rec.job);
  }

  async signalJob(id: string, signal: string): Promise<void> {
    this.guard.assertOpen();
    if (!ALLOWED_SIGNALS.includes(signal)) throw new HostInputError(`signal must be one of ${ALLOWED_SIGNALS.join(', ')}`, 'signal');
    const rec = this.get(id);
    if (rec.job.state !== 'up' && rec.job.state !== 'stopping') throw new JobNotRunningError(id, rec.job.state);
    await this.config.runtime.signal(this.id, id, signal);
  }

  /**
   * The stdio of a job started with `stdin`, once it has started; it can be taken once. Output
   * comes raw from the runtime (Docker), else from the job's line logs (process runtime).
   */
  async takeStdio(id: string): Promise<Required<JobStdio>> {
    this.guard.assertOpen();
    const rec = this.get(id);
    if (!rec.job.stdin) throw new HostInputError(`job ${id} was not started with stdin: nothing to attach to`, 'stdin');
    await rec.started;
    const stdio = this.config.runtime.takeStdio(this.id, id);
    if (!stdio) throw new JobNotRunningError(id, TERMINAL_STATES.has(rec.job.state) ? rec.job.state : 'attached already');
    const lines = async function* (logs: AsyncIterable<LogLine>): AsyncGenerator<OutputChunk> {
      for await (const l of logs) yield { stream: l.stream, data: Buffer.from(`${l.line}\n`) };
    };
    return { ...stdio, output: stdio.output ?? lines(this.config.runtime.logs(this.id, id, { follow: true })) };
  }

  /** Resolves with the job once it has ended. */
  async waitEnded(id: string): Promise<Job> {
    const rec = this.get(id);
    await rec.ended;
    return copyJob(rec.job);
  }

  /** The job's output; with `follow`, until the job ends or `signal` aborts. */
  logs(id: string, options: { follow?: boolean; tail?: number; signal?: AbortSignal } = {}): AsyncIterable<LogLine> {
    this.guard.assertOpen();
    const kept = this.jobs.has(id) ? undefined : this.endedStore.get(id);
    if (kept) {
      const lines = options.tail === undefined ? kept.lines : kept.lines.slice(-options.tail);
      return (async function* () {
        yield* lines;
      })();
    }
    const rec = this.get(id);
    if (rec.job.state === 'pending' || rec.job.state === 'failed') return (async function* (lines) {
      yield* lines;
    })(startFailureLines(rec.job));
    return this.config.runtime.logs(this.id, id, options);
  }

  /** Job state changes, after replaying those with `seq > since` still in the backlog. */
  events(options: { since?: number; signal?: AbortSignal } = {}): AsyncIterable<JobEvent> {
    this.guard.assertOpen();
    const live = this.fanout.subscribe(options.signal);
    if (options.since === undefined) return live;
    const since = options.since;
    const replay = this.backlog.filter((e) => e.seq > since);
    const out = new AsyncQueue<JobEvent>(() => live.end());
    let last = since;
    for (const e of replay) {
      out.push(e);
      last = e.seq;
    }
    void (async () => {
      for await (const e of live) if (e.seq > last) out.push(e);
      out.end();
    })();
    return out;
  }

  status(): HostStatus {
    this.guard.assertOpen();
    const live = [...this.jobs.values()].filter((r) => !TERMINAL_STATES.has(r.job.state)).length;
    return {
      id: this.id,
      addr: this.apiAddr,
      advertiseAddr: this.advertiseAddr,
      tags: { ...this.config.tags },
      capacity: { ...this.config.capacity },
      allocatedMemoryBytes: this.allocatedMemory(),
      jobs: live,
      runtime: this.config.runtime.name,
    };
  }

  /** Leave discovery and stop following the runtime. Jobs keep running (a new agent adopts them). */
  close(): Promise<void> {
    return this.guard.close(async () => {
      await this.hostRegistration?.unregister().catch(() => {});
      for (const rec of this.jobs.values()) {
        rec.cancelRemoval?.();
        await this.unregisterServices(rec);
      }
      this.stopEvents.abort();
      await this.eventLoop;
      // Event streams end first (a client sees a clean end, not a reset); then the ended jobs are on disk.
      this.fanout.end();
      await Promise.all(this.saving);
    });
  }

  private get(id: string): JobRecord {
    const rec = this.jobs.get(id);
    if (!rec) throw new JobNotFoundError(id);
    return rec;
  }

  private record(job: Job): JobRecord {
    let markEnded = () => {};
    let markStarted = () => {};
    const ended = new Promise<void>((resolve) => (markEnded = resolve));
    const started = new Promise<void>((resolve) => (markStarted = resolve));
    return { job, services: [], ended, markEnded, started, markStarted };
  }

  private allocatedMemory(): number {
    let sum = 0;
    for (const r of this.jobs.values()) if (!TERMINAL_STATES.has(r.job.state)) sum += r.job.limits.memoryBytes ?? 0;
    return sum;
  }

  private transition(rec: JobRecord, to: JobState, patch: { exit?: ExitStatus; error?: JobError } = {}): void {
    if (!canTransition(rec.job.state, to)) {
      this.logger.warn('ignored an impossible job transition', { jobId: rec.job.id, from: rec.job.state, to });
      return;
    }
    rec.job.state = to;
    rec.job.updatedAt = new Date().toISOString();
    if (patch.exit) rec.job.exit = patch.exit;
    if (patch.error) rec.job.error = patch.error;
    this.emit(rec);
    if (TERMINAL_STATES.has(to)) {
      rec.markEnded();
      this.ports.release(rec.job.boundPorts.map((p) => p.hostPort));
      void this.unregisterServices(rec);
      this.keepEnded(rec);
      this.scheduleRemoval(rec);
    }
  }

  /** Write the ended job and its last lines to the state dir (in the background; `close` waits). */
  private keepEnded(rec: JobRecord): void {
    const job = copyJob(rec.job);
    const saved = (async () => {
      // A job that failed to start has no output (the runtime removed what it had): why it failed is its log.
      const lines: LogLine[] = startFailureLines(job);
      if (job.state !== 'failed') {
        try {
          for await (const l of this.config.runtime.logs(this.id, job.id, { tail: this.endedStore.lineCount })) lines.push(l);
        } catch {
          // the runtime lost them: keep the job's state and exit
        }
      }
      await this.endedStore.save(job, lines);
    })()
      .catch((err: unknown) => this.logger.warn('cannot keep an ended job', { jobId: job.id, err: (err as Error).message }))
      .finally(() => this.saving.delete(saved));
    this.saving.add(saved);
  }

  private emit(rec: JobRecord): void {
    const event: JobEvent = { seq: ++this.seq, job: copyJob(rec.job) };
    this.backlog.push(event);
    if (this.backlog.length > HOST_AGENT_DEFAULTS.eventBacklog) this.backlog.shift();
    this.logger.debug('job state', { jobId: rec.job.id, state: rec.job.state });
    this.fanout.publish(event);
  }

  private onRuntimeEvent(event: RuntimeEvent): void {
    if (event.hostId !== this.id) return;
    const rec = this.jobs.get(event.jobId);
    if (!rec) {
      this.pendingExits.set(event.jobId, event.exit);
      return;
    }
    this.ended(rec, event.exit);
  }

  private ended(rec: JobRecord, exit: ExitStatus): void {
    if (TERMINAL_STATES.has(rec.job.state)) return;
    if (rec.job.state === 'stopping') return this.transition(rec, 'down', { exit });
    if (exit.code === 0 && exit.reason !== 'oom') return this.transition(rec, 'down', { exit });
    this.transition(rec, 'crashed', { exit, error: jobErrorOf(new JobCrashedError(rec.job, exit)) });
  }

  /** Forget the ended job `retainEndedMs` after its end (`updatedAt`), and delete what the runtime kept of it. */
  private scheduleRemoval(rec: JobRecord): void {
    if (this.guard.closed) return;
    rec.cancelRemoval = after(
      this.config.clock,
      this.retainLeftMs(rec.job),
      () => {
        if (this.jobs.get(rec.job.id) !== rec) return;
        this.jobs.delete(rec.job.id);
        this.removeLeftovers(rec.job.id);
      },
      { unref: true },
    );
  }

  /** What is left of `retainEndedMs` since the job ended (0 once it has passed). */
  private retainLeftMs(job: Job): number {
    return Math.max(0, Date.parse(job.updatedAt) + this.config.retainEndedMs - this.config.clock.now());
  }

  private removeLeftovers(jobId: string): void {
    this.config.runtime
      .remove(this.id, jobId)
      .then(() => this.artifacts.remove(jobId))
      .catch((err: unknown) => this.logger.warn('cannot remove an ended job', { jobId, err: (err as Error).message }));
  }

  /** Take over a job a previous agent of this host started. */
  private async adopt(found: RuntimeJob): Promise<void> {
    const { job, ports } = found.spec;
    if (this.jobs.has(job.id)) return;
    const now = new Date().toISOString();
    const kept = this.endedStore.get(job.id);
    if (kept && !found.running) {
      // It ended under a previous agent, which recorded how: keep that (exit code, end time). The
      // runtime's copy (every line) stays until `retainEndedMs` after the end, as if no restart
      // happened; past that, only the record answers (docs/host.md).
      if (this.retainLeftMs(kept.job) === 0) return this.removeLeftovers(job.id);
      const rec = this.record(copyJob(kept.job));
      rec.markStarted();
      rec.markEnded();
      this.jobs.set(job.id, rec);
      this.scheduleRemoval(rec);
      return;
    }
    const rec = this.record({ ...job, hostId: this.id, state: 'starting', boundPorts: ports, createdAt: found.startedAt || now, updatedAt: now });
    rec.markStarted();
    this.jobs.set(job.id, rec);
    this.ports.reserve(ports.map((p) => p.hostPort));
    const exit = found.exit ?? this.pendingExits.get(job.id);
    this.pendingExits.delete(job.id);
    if (found.running && !exit) {
      this.transition(rec, 'up');
      this.registerServices(rec);
    } else {
      this.ended(rec, exit ?? { code: 137, reason: 'killed' });
    }
    this.logger.info('adopted a job', { jobId: job.id, state: rec.job.state });
  }

  /**
   * Register the job's services once its ports really serve, so that the router never sends a
   * request to a job that is still booting (and a deploy never routes to a release that cannot
   * answer). Runs in the background: a job that never listens is simply never registered.
   */
  private registerServices(rec: JobRecord): void {
    if (rec.job.oneOff || this.guard.closed) return;
    const wanted = () => rec.job.state === 'up' && !this.guard.closed;
    // Without a port-mapping proxy in front of the job, an accepted connection is the job's own.
    const probe = this.config.runtime.mapsPorts ? {} : { settleMs: 0 };
    const { runtime } = this.config;
    void (async () => {
      for (const port of rec.job.boundPorts) {
        if (!servesBeforeRegistering(port)) continue;
        // A port proxy's accepted connection can pass for the job's on a busy machine: the runtime, when it can, says whether the job itself listens.
        if (runtime.listening && !(await probeUntil(async () => (await runtime.listening?.(this.id, rec.job.id, port.port)) !== false, wanted))) return;
        if (!(await waitUntilServing(this.advertiseAddr, port.hostPort, wanted, probe))) return;
      }
      traceHost('serving', rec.job.id);
      await this.registerServicesNow(rec);
      traceHost('registered', rec.job.id);
    })().catch((err: Error) => this.logger.error('cannot register job services', { jobId: rec.job.id, err: err.message }));
  }

  private async registerServicesNow(rec: JobRecord): Promise<void> {
    for (const port of rec.job.boundPorts) {
      if (!port.service) continue;
      try {
        const reg = await this.config.discovery.register({
          service: port.service,
          addr: `${this.advertiseAddr}:${port.hostPort}`,
          proto: port.proto === 'udp' ? 'udp' : 'http',
          meta: { jobId: rec.job.id, app: rec.job.app, type: rec.job.type, release: rec.job.release, hostId: this.id },
          ttlMs: this.config.registrationTtlMs,
        });
        if (rec.job.state !== 'up' || this.guard.closed) await reg.unregister();
        else rec.services.push(reg);
      } catch (err) {
        this.logger.error('cannot register a job service', { jobId: rec.job.id, service: port.service, err: (err as Error).message });
      }
    }
  }

  private async unregisterServices(rec: JobRecord): Promise<void> {
    const regs = rec.services.splice(0);
    await Promise.all(regs.map((r) => r.unregister().catch(() => {})));
  }

  private async registerHost(): Promise<void> {
    const reg = await this.config.discovery.register({
      service: 'flynn-host',
      addr: this.apiAddr,
      meta: {
        id: this.id,
        addr: this.apiAddr,
        advertiseAddr: this.advertiseAddr,
        tags: JSON.stringify(this.config.tags),
        capacity: JSON.stringify(this.config.capacity),
      },
      ttlMs: this.config.registrationTtlMs,
    });
    this.hostRegistration = reg;
    void reg.lost.then(async (err) => {
      if (this.guard.closed) return;
      this.logger.warn('host registration lost; registering again', { err: err.message });
      for (let attempt = 0; !this.guard.closed; attempt++) {
        try {
          return await this.registerHost();
        } catch {
          await this.config.clock.sleep(Math.min(5000, 200 * 2 ** attempt)).catch(() => {});
        }
      }
    });
  }
}

function copyJob(job: Job): Job {
  const out: Job = {
    ...job,
    cmd: [...job.cmd],
    env: { ...job.env },
    ports: job.ports.map((p) => ({ ...p })),
    boundPorts: job.boundPorts.map((p) => ({ ...p })),
    limits: { ...job.limits },
    meta: { ...job.meta },
  };
  if (job.volumes) out.volumes = job.volumes.map((v) => ({ ...v }));
  if (job.exit) out.exit = { ...job.exit };
  if (job.error) out.error = { ...job.error };
  return out;
}

/** A job that failed to start: its error as its one stderr line, so `flynn log` and a failed deploy show why (none otherwise). */
function startFailureLines(job: Job): LogLine[] {
  return job.state === 'failed' && job.error ? [{ stream: 'stderr', line: job.error.message, time: job.updatedAt }] : [];
}
