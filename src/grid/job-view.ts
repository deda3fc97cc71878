/**
 * The controller's view of the scheduler's jobs: state mapping, and the memory of jobs that ended
 * (crashed, failed to boot, stopped) after the scheduler forgot them.
 */
import type { Clock } from '../common/clock.js';
import type { Job, JobState, LogLine } from '../controller/types.js';
import type { LogLine as HostLogLine } from '../host/types.js';
import type { SchedulerView, JobState as SchedulerJobState, ScheduledJob } from '../scheduler/types.js';

const STATE_MAP: Record<SchedulerJobState, JobState> = {
  pending: 'starting',
  starting: 'starting',
  up: 'up',
  stopping: 'down',
  down: 'down',
  crashed: 'crashed',
  failed: 'failed',
};

/** A scheduler job as the controller shows it, in `state` (default its own). */
export function toJob(j: ScheduledJob, state: SchedulerJobState = j.state): Job {
  return { id: j.id, appId: j.app, releaseId: j.release, type: j.type, state: STATE_MAP[state], hostId: j.hostId, createdAt: new Date(j.createdAt).toISOString() };
}

export function toLogLine(job: ScheduledJob, l: HostLogLine): LogLine {
  return { jobId: job.id, type: job.type, stream: l.stream, msg: l.line, time: l.time };
}

/** The jobs of an app the scheduler knows: formation jobs and running one-off jobs. */
export function scheduledJobs(view: SchedulerView, appId: string): ScheduledJob[] {
  const jobs = view.formations.filter((f) => f.app === appId).flatMap((f) => f.processes.flatMap((p) => p.jobs));
  return [...jobs, ...view.oneOff.filter((j) => j.app === appId)];
}

/** A job the scheduler no longer shows (or soon will not): its logs stay readable; `listed` ones stay in `listJobs`. */
export interface EndedJob {
  job: ScheduledJob;
  state: SchedulerJobState;
  at: number;
  listed: boolean;
}

export interface EndedJobsOptions {
  /** How long a `listed` job stays listed, in ms. */
  listedMs: number;
  /** How long an ended job is remembered at all (its logs readable), in ms. */
  keptMs: number;
  /** Most jobs remembered at once (the oldest are forgotten first). */
  max: number;
  clock: Clock;
}

/** The jobs that ended, oldest first, each forgotten after its time. */
export class EndedJobs {
  private readonly ended = new Map<string, EndedJob>();

  constructor(private readonly options: EndedJobsOptions) {}

  remember(job: ScheduledJob, state: SchedulerJobState, listed: boolean): void {
    this.ended.delete(job.id);
    this.ended.set(job.id, { job, state, at: this.options.clock.now(), listed });
    this.forget();
  }

  /**
   * Jobs that ended before this memory began (e.g. a platform restart), each at its own end time
   * `at`: kept and listed for what is left of their time, as if they had been remembered then. A job
   * remembered already wins.
   */
  recall(jobs: readonly EndedJob[]): void {
    const fresh = jobs.filter((e) => !this.ended.has(e.job.id));
    if (fresh.length === 0) return;
    const all = [...this.ended.values(), ...fresh.map((e) => ({ ...e }))].sort((a, b) => a.at - b.at);
    this.ended.clear();
    for (const e of all) this.ended.set(e.job.id, e);
    this.forget();
  }

  get(id: string): EndedJob | undefined {
    return this.ended.get(id);
  }

  /** The remembered jobs of an app (only the listed ones with `listed`). */
  of(appId: string, options: { listed?: boolean } = {}): EndedJob[] {
    this.forget();
    return [...this.ended.values()].filter((e) => e.job.app === appId && (!options.listed || e.listed));
  }

  /** Drop what is older than its memory (a Map iterates oldest first) or over the cap. */
  forget(): void {
    const now = this.options.clock.now();
    for (const [id, e] of this.ended) {
      if (e.listed && now - e.at > this.options.listedMs) e.listed = false;
      if (now - e.at > this.options.keptMs || this.ended.size > this.options.max) this.ended.delete(id);
    }
  }
}
