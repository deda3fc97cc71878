import { type Clock, systemClock } from '../common/clock.js';
import { until, WaitTimeoutError } from '../common/until.js';
import { allAtOnce } from './deployer-all-at-once.js';
import { bootTimeout, countUp, formatSeconds, jobFailure, startFailure } from './deployer-failure.js';
import { oneByOne } from './deployer-one-by-one.js';
import type { BootDiagnosis, DeployPlan, DeployStrategy } from './deployer-strategy.js';
import { DeployFailedError } from './errors.js';
import { SCALE_WAIT_DEFAULTS, statusWords } from './scale-wait.js';
import type { JobRunner } from './jobs.js';
import type { DeployStep } from './store.js';
import type { App, DeploymentStrategy, Job } from './types.js';

export type { BootDiagnosis, DeployPlan } from './deployer-strategy.js';

export interface DeployOptions {
  signal?: AbortSignal;
  /** Progress lines for the event log and the CLI. */
  onStep?: (step: string) => void;
  /**
   * Write formations (counts, or null to remove one) as one recorded `starting-new` step of the
   * deployment, in one store transaction: the only way a deployer changes formations, so a
   * controller that restarts knows what to undo.
   */
  writeFormations: (formations: NonNullable<DeployStep['formations']>) => Promise<void>;
}

/**
 * Brings a new release up next to the running one, through {@link DeployOptions.writeFormations}
 * (the `starting-new` steps of a deployment). Resolves once the new release runs at its counts
 * (one-by-one: having lowered the old release's counts as new jobs came up); rejects when the new
 * jobs do not come up. Switching the app to the new release, stopping the old one, or restoring it
 * after a failure is the {@link DeploymentManager}'s part, each a recorded step.
 */
export interface Deployer {
  deploy(plan: DeployPlan, options: DeployOptions): Promise<void>;
}

export interface FormationDeployerOptions {
  /** Where job states are watched and logs read (the scheduler's view); see {@link BootDiagnosis} for what it may add. */
  jobs: Pick<JobRunner, 'watchJobs' | 'logs'> & Partial<Pick<JobRunner, 'listJobs'>> & Partial<BootDiagnosis>;
  /**
   * Boot timeout: how long new jobs get to come up (a job with ports: to answer on `$PORT`), per
   * step, in ms. An app's `deploy_timeout` meta (seconds) overrides it. Default
   * {@link FORMATION_DEPLOYER_DEFAULTS}.timeoutMs.
   */
  timeoutMs?: number;
  /**
   * How long the new jobs of a step must stay up once they are, in ms, before the step is done
   * (and the old release's jobs are stopped); one that crashes or exits within it fails the
   * deploy. Default {@link FORMATION_DEPLOYER_DEFAULTS}.holdMs; 0 counts a job up the moment it answers.
   */
  holdMs?: number;
  /** Time of the boot timeout and the hold. Default the system clock. */
  clock?: Clock;
}

export const FORMATION_DEPLOYER_DEFAULTS = Object.freeze({
  /** Boot timeout per step, in ms: 60 s, as Heroku gives a web dyno to bind its `$PORT` (R10). */
  timeoutMs: 60_000,
  /** The hold, in ms: `flynn scale`'s, so a web that answers once and exits does not replace the old release. */
  holdMs: SCALE_WAIT_DEFAULTS.holdMs,
});

/** The strategy of each {@link DeploymentStrategy} name. */
const STRATEGIES: Record<DeploymentStrategy, DeployStrategy> = { 'all-at-once': allAtOnce, 'one-by-one': oneByOne };

/** A job of the list that crashed or did not start. */
const endedJob = (jobs: readonly Job[]) => jobs.find((j) => j.state === 'crashed' || j.state === 'failed');

/** The app meta key that sets an app's boot timeout, in seconds (as Flynn's `deploy_timeout`). */
export const DEPLOY_TIMEOUT_META = 'deploy_timeout';
const MAX_DEPLOY_TIMEOUT_S = 3600;

/**
 * The boot timeout of `app` in ms: its `deploy_timeout` meta (whole seconds, 1-3600) when set,
 * else `fallbackMs`. Throws a {@link DeployFailedError} on a value that is not such a number.
 */
export function bootTimeoutMs(app: Pick<App, 'name' | 'meta'>, fallbackMs: number = FORMATION_DEPLOYER_DEFAULTS.timeoutMs): number {
  const raw = app.meta?.[DEPLOY_TIMEOUT_META];
  if (raw === undefined) return fallbackMs;
  const s = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || s < 1 || s > MAX_DEPLOY_TIMEOUT_S) {
    throw new DeployFailedError(`app ${app.name} has meta ${DEPLOY_TIMEOUT_META}=${JSON.stringify(raw)}: it must be a whole number of seconds, 1-${MAX_DEPLOY_TIMEOUT_S}`);
  }
  return s * 1000;
}

/**
 * The deployer that drives the scheduler through formations (as Flynn's deployer does): it scales
 * the new release's formation up and waits for its jobs to be `up`. `all-at-once` does it in one
 * step; `one-by-one` one job at a time, per process type, scaling the old release down by one as
 * each new job is up.
 */
export class FormationDeployer implements Deployer {
  private readonly timeoutMs: number;
  private readonly holdMs: number;
  private readonly clock: Clock;

  constructor(private readonly options: FormationDeployerOptions) {
    this.timeoutMs = options.timeoutMs ?? FORMATION_DEPLOYER_DEFAULTS.timeoutMs;
    this.holdMs = options.holdMs ?? FORMATION_DEPLOYER_DEFAULTS.holdMs;
    this.clock = options.clock ?? systemClock;
  }

  async deploy(plan: DeployPlan, options: DeployOptions): Promise<void> {
    const timeoutMs = bootTimeoutMs(plan.app, this.timeoutMs);
    await STRATEGIES[plan.strategy].run({
      plan,
      old: plan.from && plan.from.releaseId !== plan.to.releaseId ? plan.from : null,
      step: (line) => options.onStep?.(line),
      write: (releaseId, processes) => options.writeFormations([{ releaseId, processes }]),
      waitUp: (counts) => this.waitUp(plan.app, plan.to.releaseId, counts, timeoutMs, options.signal),
    });
  }

  /** Wait on the app's jobs until the new release runs `counts` jobs that are up, one of them failed, or the boot timeout. */
  private async waitUp(app: App, releaseId: string, counts: Record<string, number>, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const { jobs } = this.options;
    let seen: Job[] = [];
    const settled = (all: Job[]) => {
      seen = all.filter((j) => j.releaseId === releaseId);
      return endedJob(seen) !== undefined || Object.entries(counts).every(([type, n]) => countUp(seen, type) >= n);
    };
    try {
      await until((s) => jobs.watchJobs(app.id, { signal: s }), settled, { timeoutMs, clock: this.clock, what: 'the new jobs coming up', ...(signal ? { signal } : {}) });
    } catch (err) {
      if (err instanceof WaitTimeoutError) throw await bootTimeout(jobs, app, seen, counts, timeoutMs);
      throw err;
    }
    const failed = endedJob(seen);
    if (failed) throw await this.failure(app, failed);
    await this.hold(app, releaseId, new Set(seen.filter((j) => j.state === 'up').map((j) => j.id)), signal);
  }

  /** Resolve once the jobs `up` have stayed up for the hold; reject when one of them, or another job of the release, ends first. */
  private async hold(app: App, releaseId: string, up: ReadonlySet<string>, signal?: AbortSignal): Promise<void> {
    // Nothing came up (a release without processes): nothing to hold.
    if (this.holdMs === 0 || up.size === 0) return;
    const { jobs } = this.options;
    let ended: Job | undefined;
    const broken = (all: Job[]) => {
      const mine = all.filter((j) => j.releaseId === releaseId);
      ended = endedJob(mine) ?? mine.find((j) => up.has(j.id) && j.state !== 'up');
      return ended !== undefined;
    };
    try {
      await until((s) => jobs.watchJobs(app.id, { signal: s }), broken, { timeoutMs: this.holdMs, clock: this.clock, what: 'a new job ending within the hold', ...(signal ? { signal } : {}) });
    } catch (err) {
      // Nothing ended: the jobs held.
      if (err instanceof WaitTimeoutError) return;
      throw err;
    }
    const job = ended as Job;
    throw await this.failure(app, job, up.has(job.id) ? [`It came up, then ended before the deploy was done (each new job must stay up ${formatSeconds(this.holdMs)}): the old release keeps serving.`] : []);
  }

  /** The failure of a deploy step for `job` of the new release, which ended (with its exit status) or did not start (`failed`: its host's one line). */
  private async failure(app: App, job: Job, hints: string[] = []): Promise<DeployFailedError> {
    const { jobs } = this.options;
    if (job.state === 'failed') return startFailure(jobs, app, job);
    // The scheduler's view may not carry the exit status yet: its host's record does (listed with `all`).
    const recorded = job.exit ?? (await jobs.listJobs?.(app.id, { all: true }).catch(() => []))?.find((j) => j.id === job.id)?.exit;
    const how = `${job.state === 'crashed' ? 'crashed' : 'exited'}${recorded ? ` with ${statusWords(recorded)}` : ''}`;
    return jobFailure(jobs, app, job, `${job.type} job ${job.id} of the new release ${how}`, hints);
  }
}
