import { allAtOnce } from './deployer-all-at-once.js';
import type { DeployStrategy } from './deployer-strategy.js';

/**
 * `one-by-one`: per process type, one new job at a time; as each is up, the old release is scaled
 * down by one. With nothing running yet (or a redeploy of the same release), as all-at-once.
 */
export const oneByOne: DeployStrategy = {
  async run(ctx) {
    const { plan, old, step, write, waitUp } = ctx;
    if (!old) return allAtOnce.run(ctx);
    const current: Record<string, number> = {};
    const remaining = { ...old.processes };
    for (const [type, count] of Object.entries(plan.to.processes)) {
      for (let i = 1; i <= count; i++) {
        current[type] = i;
        step(`starting ${type} ${i}/${count} of the new release`);
        await write(plan.to.releaseId, current);
        await waitUp(current);
        if ((remaining[type] ?? 0) > 0) {
          remaining[type] = (remaining[type] ?? 0) - 1;
          await write(old.releaseId, remaining);
        }
      }
    }
  },
};
