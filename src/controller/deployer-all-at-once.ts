import { describeCounts } from './deployer-failure.js';
import type { DeployStrategy } from './deployer-strategy.js';
import { traceDeployer } from './deployer-trace.js';

/** `all-at-once`: the new release's formation at its full counts in one step, then wait for all of its jobs. */
export const allAtOnce: DeployStrategy = {
  async run({ plan, step, write, waitUp }) {
    const target = plan.to.processes;
    step(`starting ${describeCounts(target)} of the new release`);
    await write(plan.to.releaseId, target);
    traceDeployer('formation put', plan.app.name);
    await waitUp(target);
    traceDeployer('jobs up', plan.app.name);
  },
};
