import type { Deployer, DeployOptions, DeployPlan } from '../deployer.js';
import { DeployFailedError } from '../errors.js';

/**
 * A {@link Deployer} fake: records every plan and delegates to `inner` (or succeeds at once);
 * `failNext()` makes the next deployment fail the way a real one whose jobs crash does.
 */
export class RecordingDeployer implements Deployer {
  readonly plans: DeployPlan[] = [];
  private failures: string[] = [];

  constructor(private readonly inner?: Deployer) {}

  failNext(message = 'new jobs did not come up'): void {
    this.failures.push(message);
  }

  async deploy(plan: DeployPlan, options: DeployOptions): Promise<void> {
    this.plans.push(structuredClone(plan));
    const failure = this.failures.shift();
    if (failure !== undefined) throw new DeployFailedError(failure);
    await this.inner?.deploy(plan, options);
  }
}
