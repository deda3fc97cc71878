/**
 * The controller's {@link JobRunner} over the scheduler (the jobs of an app across hosts, one-off
 * jobs) and the host agents' clients (logs, stopping a job, attached output of `flynn run`).
 */
import type { Discovery } from '../discovery/discovery.js';
import { portServes } from '../host/readiness.js';
import { AsyncQueue } from '../common/async-queue.js';
import { childSignal, sleep } from '../common/lifecycle.js';
import { JobStartError, ObjectNotFoundError } from '../controller/errors.js';
import type { BootDiagnosis } from '../controller/deployer.js';
import type { AttachedJob, JobRunner, LogQuery, OneOffJobSpec, RunningJob } from '../controller/jobs.js';
import type { Job, JobState, LogLine, RunOutput } from '../controller/types.js';
import { HOST_AGENT_DEFAULTS } from '../host/agent.js';
import { HostClient } from '../host/client.js';
import type { Job as HostJob, LogLine as HostLogLine } from '../host/types.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import type { JobState as SchedulerJobState, ScheduledJob } from '../scheduler/types.js';
import { slugRunnerExec } from '../slug/runner.js';
import { STORE_FORMATION_DEFAULTS } from './formation-source.js';
import { traceDeploy } from '../receiver/trace.js';

export const SCHEDULER_JOB_RUNNER_DEFAULTS = Object.freeze({
  /** How long a one-off job may take to appear on its host, in ms. */
  oneOffStartMs: 30_000,
  /** Poll interval while waiting for a one-off job to start or end, in ms. */
  pollMs: 50,
  /** How long a crashed job (or one that failed to boot) stays in `listJobs` (as `crashed`) after the scheduler replaced or stopped it, in ms. */
  crashMemoryMs: 30_000,
  /**
   * How long the logs of a job that ended (crashed, failed to boot, or stopped by a scale down or a
   * deploy) stay readable through `logs` after the scheduler forgot it, in ms: as long as a host
   * agent keeps an ended job by default (its `retainEndedMs`).
   */
  endedLogsMs: HOST_AGENT_DEFAULTS.retainEndedMs,
  /** Most ended jobs remembered at once (the oldest are forgotten first). */
  endedMax: 10_000,
  /** How often a log follow looks for new jobs of the app in the scheduler's view (besides its events), in ms. */
  followResyncMs: 1_000,
  /** Timeout of one readiness probe (a TCP connect to a job's first port), in ms. */
  probeTimeoutMs: 1_000,
});

export interface SchedulerJobRunnerOptions {
  scheduler: Pick<Scheduler, 'view' | 'runJob' | 'events'>;
  /** The host key (`componentKey(clusterKey, 'host')`) sent to the host agents for logs and stops. */
  hostKey: string;
  /**
   * Where host agents register job services once they serve. A job whose port has a service
   * counts as up only once it is registered there, i.e. once the router can send it traffic.
   */
  discovery?: Pick<Discovery, 'instances'>;
  /** Image of one-off jobs. Default {@link STORE_FORMATION_DEFAULTS}.image. */
  image?: string;
  /** Default {@link SCHEDULER_JOB_RUNNER_DEFAULTS}.oneOffStartMs. */
  oneOffStartMs?: number;
  /** Default {@link SCHEDULER_JOB_RUNNER_DEFAULTS}.crashMemoryMs. */
  crashMemoryMs?: number;
  /** Default {@link SCHEDULER_JOB_RUNNER_DEFAULTS}.endedLogsMs. */
  endedLogsMs?: number;
}

/** A job the scheduler no longer shows (or soon will not): its logs stay readable; `listed` ones stay in `listJobs`. */
interface EndedJob {
  job: ScheduledJob;
  state: SchedulerJobState;
  at: number;
  listed: boolean;
}

const STATE_MAP: Record<SchedulerJobState, JobState> = {
  pending: 'starting',
  starting: 'starting',
  up: 'up',
  stopping: 'down',
  down: 'down',
  crashed: 'crashed',
  failed: 'failed',
};

function toJob(j: ScheduledJob): Job {
  return { id: j.id, appId: j.app, releaseId: j.release, type: j.type, state: STATE_MAP[j.state], hostId: j.hostId, createdAt: new Date(j.createdAt).toISOString() };
}

function toLogLine(job: ScheduledJob, l: HostLogLine): LogLine {
  return { jobId: job.id, type: job.type, stream: l.stream, msg: l.line, time: l.time };
}

function isNotFound(err: unknown): boolean {
  return (err as { kind?: string }).kind === 'not_found';
}

/**
 * Implements the controller's JobRunner with the scheduler's view and the host agents' APIs.
 *
 * A job with ports counts as `up` only once its first port accepts connections (the host reports
 * `up` as soon as the process started), and a job that crashed (or failed to boot: see
 * {@link markBootFailed}) stays listed as `crashed` for a while after the scheduler restarted or
 * stopped it: so a deployment waits for servers that answer and fails fast on a release whose
 * processes crash. The logs of every job that ended stay readable for longer (`endedLogsMs`).
 */
export class SchedulerJobRunner implements JobRunner, BootDiagnosis {
  private readonly clients = new Map<string, HostClient>();
  private readonly image: string;
  private readonly oneOffStartMs: number;
  private readonly crashMemoryMs: number;
  private readonly endedLogsMs: number;
  private readonly ended = new Map<string, EndedJob>();
  private readonly listening = new Set<string>();
  private readonly stop = new AbortController();

  constructor(private readonly options: SchedulerJobRunnerOptions) {
    this.image = options.image ?? STORE_FORMATION_DEFAULTS.image;
    this.oneOffStartMs = options.oneOffStartMs ?? SCHEDULER_JOB_RUNNER_DEFAULTS.oneOffStartMs;
    this.crashMemoryMs = options.crashMemoryMs ?? SCHEDULER_JOB_RUNNER_DEFAULTS.crashMemoryMs;
    this.endedLogsMs = options.endedLogsMs ?? SCHEDULER_JOB_RUNNER_DEFAULTS.endedLogsMs;
    void (async () => {
      for await (const event of options.scheduler.events({ types: ['crashed', 'stopped'], signal: this.stop.signal })) {
        if (event.type === 'crashed' && !event.job.oneOff) this.remember(event.job, event.state, true);
        // A job that failed to boot was remembered as crashed before its stop: keep it so.
        if (event.type === 'stopped' && !event.job.oneOff && !this.ended.get(event.job.id)?.listed) this.remember(event.job, 'down', false);
      }
    })().catch(() => {});
  }

  private remember(job: ScheduledJob, state: SchedulerJobState, listed: boolean): void {
    this.ended.delete(job.id);
    this.ended.set(job.id, { job, state, at: Date.now(), listed });
    this.forget();
  }

  /** Drop what is older than its memory (a Map iterates oldest first) or over the cap. */
  private forget(): void {
    const now = Date.now();
    for (const [id, e] of this.ended) {
      if (e.listed && now - e.at > this.crashMemoryMs) e.listed = false;
      if (now - e.at > this.endedLogsMs || this.ended.size > SCHEDULER_JOB_RUNNER_DEFAULTS.endedMax) this.ended.delete(id);
    }
  }

  async listJobs(appId: string): Promise<Job[]> {
    this.forget();
    const live = this.scheduled(appId);
    const known = new Set(live.map((j) => j.id));
    const jobs = await Promise.all(
      live.map(async (j) => {
        const job = toJob(j);
        const ended = this.ended.get(j.id);
        // A job that failed to boot is crashed while the scheduler still stops it.
        if (ended?.listed) job.state = STATE_MAP[ended.state];
        else if (job.state === 'up' && !j.oneOff && !(await this.answers(j))) job.state = 'starting';
        return job;
      }),
    );
    for (const e of this.ended.values()) {
      if (e.listed && e.job.app === appId && !known.has(e.job.id)) jobs.push({ ...toJob(e.job), state: STATE_MAP[e.state] });
    }
    return jobs;
  }

  /** The job's `$PORT` and whether its process runs (for a deploy's boot timeout message). */
  async inspectBoot(appId: string, jobId: string): Promise<{ port?: number; running: boolean } | undefined> {
    const job = this.scheduled(appId).find((j) => j.id === jobId);
    if (!job) return undefined;
    try {
      const hostJob = await this.host(job.hostId).getJob(jobId);
      const port = Number(hostJob.env.PORT);
      return { running: hostJob.state === 'up', ...(hostJob.boundPorts.length > 0 && Number.isInteger(port) && port > 0 ? { port } : {}) };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** A deploy gave up on this job (it did not come up in time): list it as `crashed` for a while, and keep its logs readable, after it is stopped. */
  markBootFailed(appId: string, jobId: string): void {
    const job = this.scheduled(appId).find((j) => j.id === jobId);
    if (job && !job.oneOff) this.remember(job, 'crashed', true);
  }

  /**
   * True when the job has no ports; when its first port has a service, once the job is registered
   * under it in discovery (the host agent registers only ports that really serve, and the router
   * routes to exactly those); else once the port serves. Remembered once true.
   */
  private async answers(job: ScheduledJob): Promise<boolean> {
    if (this.listening.has(job.id)) return true;
    try {
      const hostJob = await this.host(job.hostId).getJob(job.id);
      const first = hostJob.boundPorts[0];
      let ok: boolean;
      if (!first) ok = true;
      else if (first.service && this.options.discovery) {
        ok = (await this.options.discovery.instances(first.service)).some((i) => i.meta.jobId === job.id);
      } else {
        ok = await portServes(this.advertiseHost(job.hostId), first.hostPort, { connectTimeoutMs: SCHEDULER_JOB_RUNNER_DEFAULTS.probeTimeoutMs });
      }
      if (ok) {
        this.listening.add(job.id);
        traceDeploy('job answers', job.app, job.id);
      }
      if (this.listening.size > 10_000) this.listening.clear();
      return ok;
    } catch {
      return false;
    }
  }

  private advertiseHost(hostId: string): string {
    const addr = this.options.scheduler.view().hosts.find((h) => h.id === hostId)?.addr ?? '';
    return addr.slice(0, addr.lastIndexOf(':'));
  }

  async killJob(appId: string, jobId: string): Promise<void> {
    const job = this.scheduled(appId).find((j) => j.id === jobId);
    if (!job) throw new ObjectNotFoundError('job', jobId);
    try {
      await this.host(job.hostId).stopJob(jobId);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  /** What the scheduler runs for a one-off job: the release's slug (through the slug runner) with its env, or a Dockerfile app's image. */
  private oneOffRequest(spec: OneOffJobSpec): Parameters<Scheduler['runJob']>[0] {
    // A Dockerfile app's one-off job runs its command in the app's image, as `docker run` would.
    const slug = spec.artifactUrl !== null && spec.artifactType !== 'docker';
    const request: Parameters<Scheduler['runJob']>[0] = {
      app: spec.appId,
      release: spec.release.id,
      type: 'run',
      image: spec.artifactType === 'docker' && spec.artifactUrl ? spec.artifactUrl : this.image,
      cmd: slug ? slugRunnerExec(spec.cmd) : [...spec.cmd],
      env: { ...spec.env },
    };
    if (spec.memoryBytes !== undefined) request.memoryBytes = spec.memoryBytes;
    if (spec.artifactType === 'docker' && spec.archiveUrl) request.imageArchive = { url: spec.archiveUrl };
    if (slug && spec.artifactUrl) {
      request.artifact = { url: spec.artifactUrl };
      request.env = { ...request.env, SLUG_URL: spec.artifactUrl };
    }
    return request;
  }

  async attachJob(spec: OneOffJobSpec & { tty: boolean }, options: { signal?: AbortSignal } = {}): Promise<AttachedJob> {
    const placed = await this.options.scheduler.runJob({ ...this.oneOffRequest(spec), stdio: spec.tty ? 'tty' : 'pipe' });
    const client = this.host(placed.hostId);
    const job = await this.waitStarted(client, placed.id);
    if (job.state === 'failed') throw new JobStartError(job.error?.message ?? `job ${placed.id} failed to start`);
    const channel = await client.attach(placed.id, options);
    return { id: placed.id, channel, stop: () => client.stopJob(placed.id, { graceMs: 0 }).then(() => {}) };
  }

  /** Wait until the host has started the job (`starting` covers the artifact download), or it failed. */
  private async waitStarted(client: HostClient, id: string): Promise<HostJob> {
    const deadline = Date.now() + this.oneOffStartMs;
    let job: HostJob | undefined;
    while (!job || job.state === 'pending' || job.state === 'starting') {
      job = await client.getJob(id).catch((err: unknown) => {
        if (isNotFound(err) && Date.now() < deadline) return undefined;
        throw err;
      });
      if (!job || job.state === 'pending' || job.state === 'starting') await sleep(SCHEDULER_JOB_RUNNER_DEFAULTS.pollMs);
    }
    return job;
  }

  async runJob(spec: OneOffJobSpec, options: { signal?: AbortSignal } = {}): Promise<RunningJob> {
    const placed = await this.options.scheduler.runJob(this.oneOffRequest(spec));
    const output = new AsyncQueue<RunOutput>();
    void this.follow(placed, output, options.signal).catch((err: unknown) => {
      output.push({ kind: 'output', stream: 'stderr', data: `${(err as Error).message}\n` });
      output.push({ kind: 'exit', status: 1 });
      output.end();
    });
    return { id: placed.id, output };
  }

  /**
   * The history of the app's jobs (or one job's), merged by time; with `follow`, then their new
   * lines, attaching every job of the app (and `type`) the scheduler starts later (a scale, a
   * deploy, a restart, a one-off job) from its first line, until the caller aborts or stops
   * iterating (a follow of one job ends with that job).
   */
  async logs(appId: string, query: LogQuery): Promise<AsyncIterable<LogLine>> {
    // Jobs that ended a while ago (crashed, failed to boot, stopped) are gone from the scheduler but their logs tell why.
    this.forget();
    const scheduled = this.scheduled(appId);
    const known = new Set(scheduled.map((j) => j.id));
    const ended = [...this.ended.values()].map((e) => e.job).filter((j) => j.app === appId && !known.has(j.id));
    let jobs = [...scheduled, ...ended];
    if (query.jobId !== undefined) {
      jobs = jobs.filter((j) => j.id === query.jobId);
      if (jobs.length === 0) throw new ObjectNotFoundError('job', query.jobId);
    }
    if (query.type !== undefined) jobs = jobs.filter((j) => j.type === query.type);
    // One listener on the caller's signal and on the runner's own (childSignal), removed when the read is over.
    const abort = new AbortController();
    const parents = [query.signal, this.stop.signal].filter((s): s is AbortSignal => s !== undefined).map((s) => childSignal(s));
    const onAbort = () => queue.end();
    // Ended by either side (or failed): stop the host streams and leave the caller's signal alone.
    const queue = new AsyncQueue<LogLine>(() => {
      for (const p of parents) {
        p.signal.removeEventListener('abort', onAbort);
        p.release();
      }
      abort.abort();
    });
    for (const p of parents) p.signal.addEventListener('abort', onAbort, { once: true });
    if (parents.some((p) => p.signal.aborted)) queue.end();
    const signal = abort.signal;

    // History of every job, merged by time.
    const read = query.follow ? new Map<string, LogLine[]>() : undefined;
    const history: LogLine[] = [];
    try {
      await Promise.all(
        jobs.map(async (job) => {
          const got: LogLine[] = [];
          read?.set(job.id, got);
          try {
            for await (const l of this.host(job.hostId).logs(job.id, { signal, ...(query.lines === undefined ? {} : { lines: query.lines }) })) got.push(toLogLine(job, l));
          } catch (err) {
            // A job (or host) that went away has no more lines; a follow attaches the job afresh.
            // A job still starting may have no output on its host yet.
            if (read) read.delete(job.id);
            else if (!isNotFound(err) && !signal.aborted && job.state !== 'pending' && job.state !== 'starting') throw err;
          }
          history.push(...got);
        }),
      );
    } catch (err) {
      queue.end();
      throw err;
    }
    history.sort((a, b) => a.time.localeCompare(b.time));
    for (const l of query.lines === undefined ? history : history.slice(-query.lines)) queue.push(l);
    if (!read) {
      queue.end();
      return queue;
    }

    const attached = new Set<string>();
    const attach = (job: ScheduledJob, after?: LogLine[]): Promise<void> => {
      if (attached.has(job.id) || signal.aborted) return Promise.resolve();
      attached.add(job.id);
      return this.followJob(job, queue, signal, after).catch(() => {
        // A job (or host) that went away has no more lines.
      });
    };
    const initial = jobs.map((job) => attach(job, read.get(job.id)));
    if (query.jobId !== undefined) {
      void Promise.all(initial).then(() => queue.end());
      return queue;
    }
    const wanted = (j: ScheduledJob) => j.app === appId && (query.type === undefined || j.type === query.type);
    void (async () => {
      for await (const event of this.options.scheduler.events({ types: ['placed', 'restarted'], signal })) {
        if ((event.type === 'placed' || event.type === 'restarted') && wanted(event.job)) void attach(event.job);
      }
    })().catch(() => {});
    // Also from the scheduler's view: a job placed before the subscription, or on a new leader.
    void (async () => {
      for (;;) {
        for (const j of this.scheduled(appId)) if (wanted(j)) void attach(j);
        await sleep(SCHEDULER_JOB_RUNNER_DEFAULTS.followResyncMs, signal);
      }
    })().catch(() => {});
    return queue;
  }

  /**
   * Push a job's new lines until it ends or `signal` aborts. `after` is the history already read
   * (its lines are skipped); without it the job is read from its first line, once it has started.
   */
  private async followJob(job: ScheduledJob, queue: AsyncQueue<LogLine>, signal: AbortSignal, after?: LogLine[]): Promise<void> {
    const client = this.host(job.hostId);
    if (!after || after.length === 0) {
      // A job just placed is not on its host yet, and a pending one has no output to follow yet.
      const deadline = Date.now() + this.oneOffStartMs;
      for (;;) {
        const state = await client.getJob(job.id, { signal }).then(
          (j) => j.state,
          (err: unknown) => {
            if (isNotFound(err) && Date.now() < deadline) return 'pending';
            throw err;
          },
        );
        if (state === 'failed') return;
        if (state !== 'pending' && state !== 'starting') break;
        await sleep(SCHEDULER_JOB_RUNNER_DEFAULTS.pollMs, signal);
      }
    }
    // The tail as long as the history read, which starts at or before its last line: skip up to that line.
    const last = after?.at(-1);
    let skipping = last ? (after?.length ?? 0) : 0;
    let held: LogLine[] = [];
    try {
      for await (const l of client.logs(job.id, { signal, follow: true, ...(skipping > 0 ? { lines: skipping } : {}) })) {
        const line = toLogLine(job, l);
        if (skipping > 0 && last) {
          if (line.time === last.time && line.stream === last.stream && line.msg === last.msg) {
            skipping = 0;
            held = [];
            continue;
          }
          held.push(line);
          if (--skipping > 0) continue;
          // The whole tail is newer than the history (many lines came in between): all new.
          for (const h of held) queue.push(h);
          held = [];
          continue;
        }
        queue.push(line);
      }
    } finally {
      for (const h of held) queue.push(h);
    }
  }

  /** Stop following the scheduler and release the host connections. */
  async close(): Promise<void> {
    this.stop.abort();
    const clients = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(clients.map((c) => c.close().catch(() => {})));
  }

  /** The jobs of an app the scheduler knows: formation jobs and running one-off jobs. */
  private scheduled(appId: string): ScheduledJob[] {
    const view = this.options.scheduler.view();
    const jobs = view.formations.filter((f) => f.app === appId).flatMap((f) => f.processes.flatMap((p) => p.jobs));
    return [...jobs, ...view.oneOff.filter((j) => j.app === appId)];
  }

  private host(hostId: string): HostClient {
    const view = this.options.scheduler.view();
    const host = view.hosts.find((h) => h.id === hostId);
    if (!host) throw new ObjectNotFoundError('host', hostId);
    const url = `http://${host.addr}`;
    let client = this.clients.get(url);
    if (!client) {
      client = new HostClient({ url, key: this.options.hostKey });
      this.clients.set(url, client);
    }
    return client;
  }

  /** Stream a one-off job's output from its host, then its exit status. */
  private async follow(placed: ScheduledJob, output: AsyncQueue<RunOutput>, signal?: AbortSignal): Promise<void> {
    const client = this.host(placed.hostId);
    const onAbort = () => void client.stopJob(placed.id, { graceMs: 0 }).catch(() => {});
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      let job = await this.waitStarted(client, placed.id);
      if (job.state === 'failed') {
        output.push({ kind: 'output', stream: 'stderr', data: `${job.error?.message ?? 'the job failed to start'}\n` });
        output.push({ kind: 'exit', status: 1 });
        output.end();
        return;
      }
      for await (const l of client.logs(placed.id, { follow: true })) output.push({ kind: 'output', stream: l.stream, data: `${l.line}\n` });
      // The log stream ends with the job; its exit status follows shortly after.
      for (;;) {
        job = await client.getJob(placed.id);
        if (job.exit || job.state === 'down' || job.state === 'crashed' || job.state === 'failed') break;
        await sleep(SCHEDULER_JOB_RUNNER_DEFAULTS.pollMs);
      }
      output.push({ kind: 'exit', status: job.exit?.code ?? (job.state === 'down' ? 0 : 1) });
      output.end();
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }
}
