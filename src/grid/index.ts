/**
 * The grid as the controller sees it, the seam between layer 1 and layer 0:
 * {@link SchedulerJobRunner}, the controller's `JobRunner` over the scheduler and the host agents
 * (jobs of an app, their logs, one-off jobs), and {@link StoreFormationSource}, the controller's
 * store as the scheduler's formations (docs/grid.md).
 *
 * ```ts
 * import { SchedulerJobRunner, StoreFormationSource } from 'flynn-ts/grid';
 * const scheduler = await startScheduler({ discovery, formations: new StoreFormationSource({ store }), connectHost });
 * const jobs = new SchedulerJobRunner({ scheduler, discovery, hostKey });
 * ```
 * @module
 */
export { SchedulerJobRunner, SCHEDULER_JOB_RUNNER_DEFAULTS } from './job-runner.js';
export type { SchedulerJobRunnerOptions } from './job-runner.js';
export { JOBS_TRACE_CHANNEL } from './job-answers.js';
export { StoreFormationSource, STORE_FORMATION_DEFAULTS, toSchedulerFormation } from './formation-source.js';
export type { StoreFormationSourceOptions } from './formation-source.js';
