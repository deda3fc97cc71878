/**
 * The host agent (flynn-host): runs jobs through a {@link Runtime}, tracks their state machine,
 * hands out host ports, and registers itself and its jobs' services in discovery. Its HTTP API is
 * server.ts; `startHostAgent` (start.ts) wires both.
 */
import { join } from 'node:path';
import { after } from '../common/clock.js';
import { CloseGuard } from '../common/lifecycle.js';
import type { Logger } from '../common/logger.js';
import { silentLogger } from '../common/logger.js';
import { agentSettings, HOST_AGENT_DEFAULTS, type AgentSettings, type HostAgentConfig } from './agent-config.js';
import { AgentRegistrations } from './agent-registrations.js';
import { JobArtifacts } from './artifacts.js';
import { VolumeStore } from './volumes.js';
import { EndedJobStore } from './ended-jobs.js';
import { CapacityError, HostErrorCodes, HostInputError, JobCrashedError, JobExistsError, JobNotFoundError, JobNotRunningError, jobErrorOf } from './errors.js';
import { ensureJobImage } from './image-archive.js';
import { JobEventLog } from './job-events.js';
import { copyJob, newJobRecord, startFailureLines, type JobRecord } from './job-record.js';
import { traceHost } from './trace.js';
import { PortAllocator } from './ports.js';
import { ALLOWED_SIGNALS, type JobStdio, type OutputChunk, type RuntimeEvent, type RuntimeJob } from './runtime.js';
import { canTransition, TERMINAL_STATES, type ExitStatus, type HostStatus, type Job, type JobError, type JobEvent, type JobState, type LogLine } from './types.js';
import { validateJobSpec } from './validate.js';

/** The agent's logic without its HTTP face; `startHostAgent` (start.ts) wires both. */
export class HostAgent {
  readonly id: string;
  readonly advertiseAddr: string;
  /** `host:port` of the HTTP API once listening; set by `startHostAgent`. */
  apiAddr = '';
  /** The host's volumes (volumes.ts), kept across job and agent restarts. */
  readonly volumes: VolumeStore;
  private readonly config: AgentSettings;
  private readonly logger: Logger;
  private readonly guard = new CloseGuard('host agent');
  private readonly jobs = new Map<string, JobRecord>();
  private readonly ports: PortAllocator;
  private readonly jobEvents = new JobEventLog(HOST_AGENT_DEFAULTS.eventBacklog);
  private readonly pendingExits = new Map<string, ExitStatus>();
  private readonly stopEvents = new AbortController();
  private readonly registrations: AgentRegistrations;
  private eventLoop: Promise<void> = Promise.resolve();
  private readonly artifacts: JobArtifacts;
  /** Ended jobs with their last lines, on disk: they outlive the runtime's copy and the agent. */
  private readonly endedStore: EndedJobStore;
  private readonly saving = new Set<Promise<void>>();

  constructor(config: HostAgentConfig) {
    this.config = agentSettings(config);
    this.id = this.config.id;
    this.advertiseAddr = this.config.advertiseAddr;
    const [first, last] = this.config.portRange;
    this.logger = (config.logger ?? silentLogger).child({ component: 'host', hostId: this.id });
    this.registrations = new AgentRegistrations(this.config, this.logger, () => this.guard.closed);
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
    await this.registrations.registerHost(apiAddr);
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
    const rec = newJobRecord({ ...spec, hostId: this.id, state: 'pending', boundPorts: [], createdAt: now, updatedAt: now });
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
        this.registrations.registerServices(rec);
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
        await this.registrations.unregisterServices(rec);
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
    return this.jobEvents.subscribe(options);
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
      await this.registrations.unregisterHost();
      for (const rec of this.jobs.values()) {
        rec.cancelRemoval?.();
        await this.registrations.unregisterServices(rec);
      }
      this.stopEvents.abort();
      await this.eventLoop;
      // Event streams end first (a client sees a clean end, not a reset); then the ended jobs are on disk.
      this.jobEvents.end();
      await Promise.all(this.saving);
    });
  }

  private get(id: string): JobRecord {
    const rec = this.jobs.get(id);
    if (!rec) throw new JobNotFoundError(id);
    return rec;
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
      void this.registrations.unregisterServices(rec);
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
    this.logger.debug('job state', { jobId: rec.job.id, state: rec.job.state });
    this.jobEvents.publish(copyJob(rec.job));
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
      const rec = newJobRecord(copyJob(kept.job));
      rec.markStarted();
      rec.markEnded();
      this.jobs.set(job.id, rec);
      this.scheduleRemoval(rec);
      return;
    }
    const rec = newJobRecord({ ...job, hostId: this.id, state: 'starting', boundPorts: ports, createdAt: found.startedAt || now, updatedAt: now });
    rec.markStarted();
    this.jobs.set(job.id, rec);
    this.ports.reserve(ports.map((p) => p.hostPort));
    const exit = found.exit ?? this.pendingExits.get(job.id);
    this.pendingExits.delete(job.id);
    if (found.running && !exit) {
      this.transition(rec, 'up');
      this.registrations.registerServices(rec);
    } else {
      this.ended(rec, exit ?? { code: 137, reason: 'killed' });
    }
    this.logger.info('adopted a job', { jobId: job.id, state: rec.job.state });
  }

}
