import type { App, DeploymentStrategy, Formation } from './types.js';

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


/** What a deploy strategy works with: the plan, and the only ways it acts and waits. */
export interface StrategyContext {
  plan: DeployPlan;
  /** The running release's formation when it is another release than the new one, else null. */
  old: Formation | null;
  /** A progress line for the event log and the CLI. */
  step(line: string): void;
  /** Set a release's formation counts (one recorded `starting-new` step of the deployment). */
  write(releaseId: string, processes: Record<string, number>): Promise<void>;
  /** Resolve once the new release runs `counts` jobs that are up; reject with a DeployFailedError when they crash or do not come up within the boot timeout. */
  waitUp(counts: Record<string, number>): Promise<void>;
}

/**
 * One way of bringing a new release up next to the running one (as Flynn's
 * worker/deployment/*), one file each: deployer-all-at-once.ts, deployer-one-by-one.ts.
 */
export interface DeployStrategy {
  run(ctx: StrategyContext): Promise<void>;
}
