import { tracer } from '../common/trace.js';
import { sleep } from '../common/lifecycle.js';
import { DeployFailedError } from './errors.js';
import type { JobRunner } from './jobs.js';
import type { Store } from './store.js';
import type { App, DeploymentStrategy, Formation, Job } from './types.js';

/** Deployment steps are published on this `node:diagnostics_channel` as `{ phase, app }` (tracing, benchmarks). */
export const DEPLOYER_TRACE_CHANNEL = 'flynn-ts:deployer';
const publish = tracer(DEPLOYER_TRACE_CHANNEL);
const traceDeployer = (phase: string, app: string) => publish(phase, { app });

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
}

/**
 * Moves an app from one release to another. Resolves once the new release runs at its counts and
 * the old one is stopped; rejects with a {@link DeployFailedError} when the new jobs do not come
 * up, having put the old release back as it was.
 */
export interface Deployer {
  deploy(plan: DeployPlan, options?: DeployOptions): Promise<void>;
}

export interface FormationDeployerOptions {
  store: Store;
  /** Where job states are read from (the scheduler's view). */
  jobs: Pick<JobRunner, 'listJobs' | 'logs'>;
  /** How long new jobs get to come up, per step, in ms. Default 60 000. */
  timeoutMs?: number;
  /** How often job states are polled, in ms. Default 25 (every poll step adds to a deploy's latency). */
  pollMs?: number;
}

export const FORMATION_DEPLOYER_DEFAULTS = Object.freeze({ timeoutMs: 60_000, pollMs: 25 });

/**
 * The deployer that drives the scheduler through formations (as Flynn's deployer does): it scales
 * the new release's formation up, waits for its jobs to be `up`, then scales the old one down.
 * `all-at-once` does it in one step; `one-by-one` one job at a time, per process type.
 */
export class FormationDeployer implements Deployer {
  private readonly timeoutMs: number;
  private readonly pollMs: number;

  constructor(private readonly options: FormationDeployerOptions) {
    this.timeoutMs = options.timeoutMs ?? FORMATION_DEPLOYER_DEFAULTS.timeoutMs;
    this.pollMs = options.pollMs ?? FORMATION_DEPLOYER_DEFAULTS.pollMs;
  }

  async deploy(plan: DeployPlan, options: DeployOptions = {}): Promise<void> {
    const { store } = this.options;
    const appId = plan.app.id;
    const target = plan.to.processes;
    const old = plan.from && plan.from.releaseId !== plan.to.releaseId ? plan.from : null;
    const step = (s: string) => options.onStep?.(s);
    try {
      if (plan.strategy === 'all-at-once' || !old) {
        step(`starting ${describe(target)} of the new release`);
        await store.putFormation(appId, plan.to.releaseId, target);
        traceDeployer('formation put', plan.app.name);
        await this.waitUp(appId, plan.to.releaseId, target, options.signal);
        traceDeployer('jobs up', plan.app.name);
      } else {
        const current: Record<string, number> = {};
        const remaining = { ...old.processes };
        for (const [type, count] of Object.entries(target)) {
          for (let i = 1; i <= count; i++) {
            current[type] = i;
            step(`starting ${type} ${i}/${count} of the new release`);
            await store.putFormation(appId, plan.to.releaseId, current);
            await this.waitUp(appId, plan.to.releaseId, current, options.signal);
            if ((remaining[type] ?? 0) > 0) {
              remaining[type] = (remaining[type] ?? 0) - 1;
              await store.putFormation(appId, old.releaseId, remaining);
            }
          }
        }
      }
    } catch (err) {
      step('new jobs did not come up: restoring the old release');
      await store.deleteFormation(appId, plan.to.releaseId);
      if (old) await store.putFormation(appId, old.releaseId, old.processes);
      if (err instanceof DeployFailedError) throw err;
      throw new DeployFailedError(`deployment ${plan.deploymentId} failed: ${(err as Error).message}`, { cause: err });
    }
    if (old) {
      step('stopping the old release');
      await store.deleteFormation(appId, old.releaseId);
      traceDeployer('old release stopped', plan.app.name);
    }
  }

  /** The last lines a job wrote, to show why it failed; none when they cannot be read. */
  private async lastLines(appId: string, jobId: string): Promise<string[]> {
    try {
      const lines: string[] = [];
      for await (const line of await this.options.jobs.logs(appId, { jobId, lines: 10 })) lines.push(`       ${line.msg}`);
      return lines;
    } catch {
      return [];
    }
  }

  private async waitUp(appId: string, releaseId: string, counts: Record<string, number>, signal?: AbortSignal): Promise<void> {
    const deadline = Date.now() + this.timeoutMs;
    for (;;) {
      const jobs = (await this.options.jobs.listJobs(appId)).filter((j) => j.releaseId === releaseId);
      const failed = jobs.find((j) => j.state === 'crashed' || j.state === 'failed');
      if (failed) {
        const tail = await this.lastLines(appId, failed.id);
        const why = tail.length > 0 ? `; its last output:\n${tail.join('\n')}` : '';
        throw new DeployFailedError(`${failed.type} job ${failed.id} of the new release ${failed.state}${why}`, { detail: { jobId: failed.id, output: tail } });
      }
      if (Object.entries(counts).every(([type, n]) => countUp(jobs, type) >= n)) return;
      if (Date.now() > deadline) throw new DeployFailedError(`new jobs were not up after ${this.timeoutMs} ms (want ${describe(counts)})`);
      await sleep(this.pollMs, signal);
    }
  }
}

function countUp(jobs: Job[], type: string): number {
  return jobs.filter((j) => j.type === type && j.state === 'up').length;
}

function describe(counts: Record<string, number>): string {
  return Object.entries(counts).map(([t, n]) => `${t}=${n}`).join(' ') || 'no processes';
}
