import type { DeployPlan } from './deployer.js';
import type { Formation } from './types.js';

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
