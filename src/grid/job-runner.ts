/**
 * The controller's {@link JobRunner} over the scheduler (the jobs of an app across hosts, one-off
 * jobs) and the host agents' clients (logs, stopping a job, attached output of `flynn run`).
 */
import { type Clock, systemClock } from '../common/clock.js';
import { childSignal } from '../common/lifecycle.js';
import { ChangeFlag } from '../common/watch.js';
import { ObjectNotFoundError } from '../controller/errors.js';
import type { BootDiagnosis } from '../controller/deployer.js';
import type { AttachedJob, JobRunner, LogQuery, OneOffJobSpec, RunningJob } from '../controller/jobs.js';
import type { Job, LogLine } from '../controller/types.js';
import type { Discovery } from '../discovery/discovery.js';
import { HOST_AGENT_DEFAULTS } from '../host/agent-config.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import type { SchedulerEvent, ScheduledJob } from '../scheduler/types.js';
import { HostClients } from './host-clients.js';
import { isNotFound } from './host-job.js';
import { JobAnswers } from './job-answers.js';
import { endedOnHost, endedOnHosts } from './ended-on-hosts.js';
import { EndedJobs, scheduledJobs, toJob } from './job-view.js';
import { appLogs } from './logs.js';
import { OneOffJobs } from './one-off.js';

export const SCHEDULER_JOB_RUNNER_DEFAULTS = Object.freeze({
  /** Image of one-off jobs of a release with a slug (as formation jobs: bootstrap's `STORE_FORMATION_DEFAULTS.image`). */
  image: 'flynn-ts/runtime:latest',
  /** How long a one-off job (or a job a log follow attaches) may take to appear on its host, in ms. */
  oneOffStartMs: 30_000,
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
  /**
   * How long the first list or log call waits for a host's ended jobs from before this runner, in
   * ms; a host that has not answered by then is left out of that call (its answer is still taken
   * when it comes, and a failed one is asked again at the next call).
   */
  recallWaitMs: 2_000,
  /** Timeout of one readiness probe (a TCP connect to a job's first port), in ms. */
  probeTimeoutMs: 1_000,
  /** Pause before a job's readiness is looked at again after its host did not answer, in ms. */
  answerRetryMs: 500,
});

export interface SchedulerJobRunnerOptions {
  scheduler: Pick<Scheduler, 'view' | 'runJob' | 'events'>;
  /** The host key (`componentKey(clusterKey, 'host')`) sent to the host agents for logs and stops. */
  hostKey: string;
  /**
   * Where host agents register job services once they serve. A job whose port has a service
   * counts as up only once it is registered there, i.e. once the router can send it traffic.
   */
  discovery?: Pick<Discovery, 'instances' | 'watch'>;
  /** Image of one-off jobs. Default {@link SCHEDULER_JOB_RUNNER_DEFAULTS}.image. */
  image?: string;
  /** Default {@link SCHEDULER_JOB_RUNNER_DEFAULTS}.oneOffStartMs. */
  oneOffStartMs?: number;
  /** Default {@link SCHEDULER_JOB_RUNNER_DEFAULTS}.crashMemoryMs. */
  crashMemoryMs?: number;
  /** Default {@link SCHEDULER_JOB_RUNNER_DEFAULTS}.endedLogsMs. */
  endedLogsMs?: number;
  /** Time of the memory of ended jobs and of retries. Default the system clock. */
  clock?: Clock;
}

/** Whether a scheduler event may change the jobs of `appId`. */
function concerns(event: SchedulerEvent, appId: string): boolean {
  if ('job' in event) return event.job.app === appId;
  if ('app' in event) return event.app === appId;
  return true;
}

/**
 * Implements the controller's JobRunner with the scheduler's view and the host agents' APIs.
 *
 * A job counts as `up` only once it answers by the one definition of "up" (host/readiness.ts: its
 * service registered, or its first port serving; the host reports `up` as soon as the process
 * started), and a job that crashed (or failed to boot: see {@link markBootFailed}) stays listed as
 * `crashed` for a while after the scheduler restarted or stopped it: so a deployment waits for
 * servers that answer and fails fast on a release whose processes crash. The logs of every job
 * that ended stay readable for longer (`endedLogsMs`).
 */
export class SchedulerJobRunner implements JobRunner, BootDiagnosis {
  private readonly hosts: HostClients;
  private readonly ended: EndedJobs;
  private readonly answers: JobAnswers;
  private readonly oneOff: OneOffJobs;
  private readonly appearMs: number;
  private readonly clock: Clock;
  private readonly stop = new AbortController();
  /** Per host id: its ended jobs from before this runner, recalled (or being recalled) once; `waited` once a call waited for it. */
  private readonly recalled = new Map<string, { done: Promise<void>; waited: boolean }>();

  constructor(private readonly options: SchedulerJobRunnerOptions) {
    const d = SCHEDULER_JOB_RUNNER_DEFAULTS;
    this.clock = options.clock ?? systemClock;
    this.hosts = new HostClients(options.scheduler, options.hostKey);
    this.appearMs = options.oneOffStartMs ?? d.oneOffStartMs;
    const ended = (this.ended = new EndedJobs({ listedMs: options.crashMemoryMs ?? d.crashMemoryMs, keptMs: options.endedLogsMs ?? d.endedLogsMs, max: d.endedMax, clock: this.clock }));
    this.answers = new JobAnswers({ hosts: this.hosts, discovery: options.discovery, probeTimeoutMs: d.probeTimeoutMs });
    this.oneOff = new OneOffJobs({ scheduler: options.scheduler, hosts: this.hosts, image: options.image ?? d.image, appearMs: this.appearMs });
    void (async () => {
      for await (const event of options.scheduler.events({ types: ['crashed', 'stopped'], signal: this.stop.signal })) {
        if (event.type === 'crashed' && !event.job.oneOff) ended.remember(event.job, event.state, true);
        // A job that failed to boot was remembered as crashed before its stop: keep it so.
        if (event.type === 'stopped' && !event.job.oneOff && !ended.get(event.job.id)?.listed) ended.remember(event.job, 'down', false);
      }
    })().catch(() => {});
  }

  async listJobs(appId: string, options: { all?: boolean } = {}): Promise<Job[]> {
    await this.recallEnded();
    this.ended.forget();
    const kept = options.all ? endedOnHosts(this.options.scheduler, this.hosts, appId) : undefined;
    const live = this.scheduled(appId);
    const known = new Set(live.map((j) => j.id));
    const jobs = await Promise.all(
      live.map(async (j) => {
        const ended = this.ended.get(j.id);
        // A job that failed to boot is crashed while the scheduler still stops it.
        if (ended?.listed) return toJob(j, ended.state);
        if (j.state === 'up' && !j.oneOff && !(await this.answers.check(j))) return toJob(j, 'starting');
        return toJob(j);
      }),
    );
    for (const e of this.ended.of(appId, { listed: true })) if (!known.has(e.job.id)) jobs.push(toJob(e.job, e.state));
    if (kept) {
      // What the hosts recorded (exit status, end time) wins over the runner's memory of the job;
      // a job the scheduler still shows gets its exit status and end time from there, and its end
      // too when the scheduler still shows it live (it hears of the end a moment after the host,
      // later than `flynn run`, which asks the host, reports the exit).
      const byId = new Map(jobs.map((j) => [j.id, j]));
      for (const { listed } of await kept) {
        const shown = byId.get(listed.id);
        if (!known.has(listed.id) || !shown) byId.set(listed.id, listed);
        else byId.set(listed.id, { ...shown, ...(shown.state === 'up' || shown.state === 'starting' ? { state: listed.state } : {}), ...(listed.exit ? { exit: listed.exit } : {}), ...(listed.endedAt ? { endedAt: listed.endedAt } : {}) });
      }
      return [...byId.values()];
    }
    return jobs;
  }

  /**
   * The app's jobs (as {@link listJobs}) now, then again after each change: a scheduler decision
   * about the app, or one of its jobs starting to answer. Ends when the runner closes.
   */
  async *watchJobs(appId: string, options: { signal?: AbortSignal } = {}): AsyncGenerator<Job[]> {
    const parents = [options.signal, this.stop.signal].filter((s): s is AbortSignal => s !== undefined).map((s) => childSignal(s));
    const stop = new AbortController();
    for (const p of parents) p.signal.addEventListener('abort', () => stop.abort(), { once: true });
    const changed = new ChangeFlag();
    // Subscribed before the first read: no decision falls between the two.
    const events = this.options.scheduler.events({ signal: stop.signal });
    void (async () => {
      for await (const event of events) if (concerns(event, appId)) changed.notify();
    })()
      .catch(() => {})
      .finally(() => stop.abort());
    const waiting = new Set<string>();
    try {
      while (!stop.signal.aborted) {
        const jobs = await this.listJobs(appId);
        for (const j of this.scheduled(appId)) {
          if (j.state !== 'up' || j.oneOff || this.answers.has(j.id) || waiting.has(j.id)) continue;
          waiting.add(j.id);
          // A host that did not answer: look again a little later (the next read starts a new wait).
          void this.answers.wait(j, stop.signal).then(
            () => changed.notify(),
            () => {
              waiting.delete(j.id);
              void this.clock.sleep(SCHEDULER_JOB_RUNNER_DEFAULTS.answerRetryMs, stop.signal).then(() => changed.notify(), () => {});
            },
          );
        }
        yield jobs;
        await changed.wait(stop.signal);
      }
    } catch (err) {
      if (!stop.signal.aborted) throw err;
    } finally {
      stop.abort();
      for (const p of parents) p.release();
    }
  }

  /** The job's `$PORT` and whether its process runs (for a deploy's boot timeout message). */
  async inspectBoot(appId: string, jobId: string): Promise<{ port?: number; running: boolean } | undefined> {
    const job = this.scheduled(appId).find((j) => j.id === jobId);
    if (!job) return undefined;
    try {
      const hostJob = await this.hosts.get(job.hostId).getJob(jobId);
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
    if (job && !job.oneOff) this.ended.remember(job, 'crashed', true);
  }

  async createVolume(name: string): Promise<{ hostId: string }> {
    const hosts = [...this.options.scheduler.view().hosts].sort((a, b) => a.jobs - b.jobs || a.id.localeCompare(b.id));
    if (hosts.length === 0) throw new ObjectNotFoundError('host', 'any');
    for (const h of hosts) {
      const has = await this.hosts.get(h.id).getVolume(name).then(() => true, (err: unknown) => (isNotFound(err) ? false : Promise.reject(err)));
      if (has) return { hostId: h.id };
    }
    await this.hosts.get(hosts[0]!.id).createVolume(name);
    return { hostId: hosts[0]!.id };
  }

  async killJob(appId: string, jobId: string): Promise<void> {
    const job = this.scheduled(appId).find((j) => j.id === jobId);
    if (!job) throw new ObjectNotFoundError('job', jobId);
    try {
      await this.hosts.get(job.hostId).stopJob(jobId);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  attachJob(spec: OneOffJobSpec & { tty: boolean }, options: { signal?: AbortSignal } = {}): Promise<AttachedJob> {
    return this.oneOff.attach(spec, options);
  }

  runJob(spec: OneOffJobSpec, options: { signal?: AbortSignal } = {}): Promise<RunningJob> {
    return this.oneOff.run(spec, options);
  }

  async logs(appId: string, query: LogQuery): Promise<AsyncIterable<LogLine>> {
    await this.recallEnded();
    // One job no longer in memory (e.g. forgotten after endedLogsMs) is looked for on the hosts.
    const kept = (jobId: string) => endedOnHosts(this.options.scheduler, this.hosts, appId).then((all) => all.find((e) => e.scheduled.id === jobId)?.scheduled);
    return appLogs({ scheduler: this.options.scheduler, hosts: this.hosts, ended: this.ended, kept, appearMs: this.appearMs, signal: this.stop.signal }, appId, query);
  }

  /** Stop following the scheduler and release the host connections. */
  async close(): Promise<void> {
    this.stop.abort();
    await this.hosts.close();
  }

  /**
   * Once per host: the jobs it keeps as ended (host/ended-jobs.ts), remembered at their end times as
   * the scheduler's events would have had this runner run then. So after a platform restart a job
   * that crashed before it is listed `crashed` for what is left of `crashMemoryMs`, and its logs
   * read, as before the restart. A host that does not answer is asked again at the next call.
   */
  private async recallEnded(): Promise<void> {
    const pending: Promise<void>[] = [];
    for (const h of this.options.scheduler.view().hosts) {
      let recalled = this.recalled.get(h.id);
      if (!recalled) {
        const done = endedOnHost(this.hosts, h.id, { signal: this.stop.signal }).then(
          (jobs) => this.ended.recall(jobs.filter((e) => !e.scheduled.oneOff).map(({ scheduled: job }) => ({ job, state: job.state, at: job.endedAt ?? this.clock.now(), listed: job.state !== 'down' }))),
          () => void this.recalled.delete(h.id),
        );
        recalled = { done, waited: false };
        this.recalled.set(h.id, recalled);
      }
      if (!recalled.waited) pending.push(recalled.done);
    }
    // Every host recalled already (the usual case): nothing to wait for.
    if (pending.length === 0) return;
    // A frozen host holds up one call for recallWaitMs, not every call for the HTTP client's own timeout (minutes).
    const waited = new AbortController();
    await Promise.race([Promise.all(pending), this.clock.sleep(SCHEDULER_JOB_RUNNER_DEFAULTS.recallWaitMs, waited.signal, { unref: true }).catch(() => {})]);
    waited.abort();
    for (const recalled of this.recalled.values()) recalled.waited = true;
  }

  private scheduled(appId: string): ScheduledJob[] {
    return scheduledJobs(this.options.scheduler.view(), appId);
  }
}
