import { tracer } from '../common/trace.js';
import { sleep } from '../common/lifecycle.js';
import { DeployFailedError } from './errors.js';
import type { JobRunner } from './jobs.js';
import type { DeployStep } from './store.js';
import type { App, DeploymentStrategy, Formation, Job } from './types.js';

/**
 * Deployment steps are published on this `node:diagnostics_channel` as `{ phase, app }` (tracing,
 * benchmarks): the deployer's `formation put` and `jobs up`, and `state <state>` right after each
 * step of a deployment is committed (see {@link DeployState}; tests kill the controller there).
 */
export const DEPLOYER_TRACE_CHANNEL = 'flynn-ts:deployer';
const publish = tracer(DEPLOYER_TRACE_CHANNEL);
export const traceDeployer = (phase: string, app: string) => publish(phase, { app });

/** What a deployment must achieve. */
export interface DeployPlan {
  deploymentId: string;
  app: App;
  strategy: DeploymentStrategy;
  /** The running release's formation, or null when nothing runs yet. */
  from: Formation | null;
  /** The new release and the counts it must reach. */
  to: { releaseId: string; processes: Record<string, number> };
}

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

/**
 * What a job runner can add to explain a job that did not come up in time. Optional: the deployer
 * works with any {@link JobRunner}, and one without these methods gets a plainer timeout message.
 */
export interface BootDiagnosis {
  /** The job's `$PORT` (none for a job without ports) and whether its process runs; undefined for an unknown job. */
  inspectBoot(appId: string, jobId: string): Promise<{ port?: number; running: boolean } | undefined>;
  /** The job failed to boot: keep it listed as `crashed`, and its logs readable, after it is stopped. */
  markBootFailed(appId: string, jobId: string): void;
}

export interface FormationDeployerOptions {
  /** Where job states and logs are read from (the scheduler's view); see {@link BootDiagnosis} for what it may add. */
  jobs: Pick<JobRunner, 'listJobs' | 'logs'> & Partial<BootDiagnosis>;
  /**
   * Boot timeout: how long new jobs get to come up (a job with ports: to answer on `$PORT`), per
   * step, in ms. An app's `deploy_timeout` meta (seconds) overrides it. Default
   * {@link FORMATION_DEPLOYER_DEFAULTS}.timeoutMs.
   */
  timeoutMs?: number;
  /** How often job states are polled, in ms. Default 25 (every poll step adds to a deploy's latency). */
  pollMs?: number;
}

export const FORMATION_DEPLOYER_DEFAULTS = Object.freeze({
  /** Boot timeout per step, in ms: 60 s, as Heroku gives a web dyno to bind its `$PORT` (R10). */
  timeoutMs: 60_000,
  /** Poll interval of job states, in ms. */
  pollMs: 25,
  /** How many of a failed job's last output lines are searched for the start of its error. */
  scanLines: 100,
  /** Most output lines a failure message shows. */
  outputLines: 30,
});

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

/** Lines that start an error report: node's `file:line` (its source line and caret follow), `node:internal/...:N`, a `XxxError:`, a Python traceback, a Go panic, a Ruby `file:N:in`. */
const ERROR_START = [/^\S+:\d+(:\d+)?$/, /^(Uncaught )?([A-Z]\w*)?(Error|Exception)\b/, /^Traceback \(most recent call last\):/, /^panic: /, /^\S+:\d+:in /];

/** Start lines at most this many lines apart belong to one error report. */
const ERROR_BLOCK_GAP = 6;

/**
 * The part of a failed job's output that tells why: from the first line of its error report (a
 * `file:line` header with its caret, a `SyntaxError:` line, a traceback) to the end, at most
 * `max` lines (the error's start is kept, the rest cut with a `… N more lines` line); without a
 * recognisable error, the last `max` lines. Trailing blank lines are dropped.
 */
export function errorExcerpt(lines: readonly string[], max: number = FORMATION_DEPLOYER_DEFAULTS.outputLines): string[] {
  let end = lines.length;
  while (end > 0 && (lines[end - 1] ?? '').trim() === '') end--;
  const out = lines.slice(0, end);
  const starts = out.flatMap((l, i) => (ERROR_START.some((re) => re.test(l)) ? [i] : []));
  if (starts.length === 0) return out.slice(-max);
  // The last error report begins at the last start line, or at the start lines just before it
  // (node's `file:line` comes 4 lines before its `SyntaxError:`).
  let k = starts.length - 1;
  while (k > 0 && (starts[k] as number) - (starts[k - 1] as number) <= ERROR_BLOCK_GAP) k--;
  const block = starts[k] as number;
  if (out.length - block <= max) return out.slice(starts.find((i) => out.length - i <= max) ?? block);
  // Too long to show whole: its start, cut.
  const shown = out.slice(block, block + max - 1);
  const more = out.length - block - shown.length;
  return [...shown, `… ${more} more line${more === 1 ? '' : 's'}`];
}

/**
 * The deployer that drives the scheduler through formations (as Flynn's deployer does): it scales
 * the new release's formation up and waits for its jobs to be `up`. `all-at-once` does it in one
 * step; `one-by-one` one job at a time, per process type, scaling the old release down by one as
 * each new job is up.
 */
export class FormationDeployer implements Deployer {
  private readonly timeoutMs: number;
  private readonly pollMs: number;

  constructor(private readonly options: FormationDeployerOptions) {
    this.timeoutMs = options.timeoutMs ?? FORMATION_DEPLOYER_DEFAULTS.timeoutMs;
    this.pollMs = options.pollMs ?? FORMATION_DEPLOYER_DEFAULTS.pollMs;
  }

  async deploy(plan: DeployPlan, options: DeployOptions): Promise<void> {
    const target = plan.to.processes;
    const old = plan.from && plan.from.releaseId !== plan.to.releaseId ? plan.from : null;
    const step = (s: string) => options.onStep?.(s);
    const timeoutMs = bootTimeoutMs(plan.app, this.timeoutMs);
    const wait = (counts: Record<string, number>) => this.waitUp(plan.app, plan.to.releaseId, counts, timeoutMs, options.signal);
    const write = (releaseId: string, processes: Record<string, number>) => options.writeFormations([{ releaseId, processes }]);
    if (plan.strategy === 'all-at-once' || !old) {
      step(`starting ${describe(target)} of the new release`);
      await write(plan.to.releaseId, target);
      traceDeployer('formation put', plan.app.name);
      await wait(target);
      traceDeployer('jobs up', plan.app.name);
      return;
    }
    const current: Record<string, number> = {};
    const remaining = { ...old.processes };
    for (const [type, count] of Object.entries(target)) {
      for (let i = 1; i <= count; i++) {
        current[type] = i;
        step(`starting ${type} ${i}/${count} of the new release`);
        await write(plan.to.releaseId, current);
        await wait(current);
        if ((remaining[type] ?? 0) > 0) {
          remaining[type] = (remaining[type] ?? 0) - 1;
          await write(old.releaseId, remaining);
        }
      }
    }
  }

  /** The part of a job's last output that tells why it failed (see {@link errorExcerpt}); none when it cannot be read. */
  private async lastOutput(appId: string, jobId: string): Promise<string[]> {
    try {
      const lines: string[] = [];
      for await (const line of await this.options.jobs.logs(appId, { jobId, lines: FORMATION_DEPLOYER_DEFAULTS.scanLines })) lines.push(line.msg);
      return errorExcerpt(lines);
    } catch {
      return [];
    }
  }

  /** A failure naming `job`: `headline`, then `hints`, the job's last output and where to read all of it. */
  private async jobFailure(app: App, job: Job, headline: string, hints: string[] = []): Promise<DeployFailedError> {
    const output = await this.lastOutput(app.id, job.id);
    // Two jobs of a type on one host, both on a fixed port: the second dies of EADDRINUSE.
    if (hints.length === 0 && output.some((l) => l.includes('EADDRINUSE'))) {
      hints = [`Its port was already in use (EADDRINUSE): does the app listen on $PORT? Every job gets a PORT of its own; a fixed port clashes as soon as two jobs share a host.`];
    }
    const lines = [headline, ...hints.map((h) => `${INDENT}${h}`)];
    if (output.length > 0) lines.push(`${INDENT}Its last output:`, ...output.map((l) => `${INDENT}${l}`), `${INDENT}Its whole output: flynn log -a ${app.name} ${job.id}`);
    else lines.push(`${INDENT}It wrote no output.`);
    return new DeployFailedError(lines.join('\n'), { detail: { jobId: job.id, output } });
  }

  /** The failure of a deploy step whose jobs were not all up within the boot timeout. */
  private async bootTimeout(app: App, jobs: Job[], counts: Record<string, number>, timeoutMs: number): Promise<DeployFailedError> {
    const within = `within ${formatSeconds(timeoutMs)} (boot timeout)`;
    const late = jobs.find((j) => j.state !== 'up' && (counts[j.type] ?? 0) > countUp(jobs, j.type));
    if (!late) {
      const up = Object.keys(counts).map((t) => `${t}=${countUp(jobs, t)}`).join(' ');
      return new DeployFailedError(`the new release's jobs were not started ${within}: want ${describe(counts)}, up ${up}; is there a host with room for them? (flynn ps, and the scheduler's log)`);
    }
    const { jobs: runner } = this.options;
    const boot = await runner.inspectBoot?.(app.id, late.id).catch(() => undefined);
    runner.markBootFailed?.(app.id, late.id);
    const name = `${late.type} job ${late.id} of the new release`;
    if (boot?.running && boot.port !== undefined) {
      return this.jobFailure(app, late, `${name} did not answer on $PORT (${boot.port}) ${within}`, [
        `Does the app listen on $PORT? Its ${late.type} process must listen on the port in the PORT environment variable (${boot.port} for this job), not on a port of its own choosing.`,
      ]);
    }
    if (boot && !boot.running) return this.jobFailure(app, late, `${name} was still starting after ${formatSeconds(timeoutMs)} (boot timeout)`);
    return this.jobFailure(app, late, `${name} was not up ${within}`);
  }

  private async waitUp(app: App, releaseId: string, counts: Record<string, number>, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const jobs = (await this.options.jobs.listJobs(app.id)).filter((j) => j.releaseId === releaseId);
      const failed = jobs.find((j) => j.state === 'crashed' || j.state === 'failed');
      if (failed) throw await this.jobFailure(app, failed, `${failed.type} job ${failed.id} of the new release ${failed.state}`);
      if (Object.entries(counts).every(([type, n]) => countUp(jobs, type) >= n)) return;
      if (Date.now() > deadline) throw await this.bootTimeout(app, jobs, counts, timeoutMs);
      await sleep(this.pollMs, signal);
    }
  }
}

/** Continuation lines of a failure message line up under its text (the pusher sees ` !     ` before the first). */
const INDENT = '       ';

function formatSeconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}

function countUp(jobs: Job[], type: string): number {
  return jobs.filter((j) => j.type === type && j.state === 'up').length;
}

function describe(counts: Record<string, number>): string {
  return Object.entries(counts).map(([t, n]) => `${t}=${n}`).join(' ') || 'no processes';
}
