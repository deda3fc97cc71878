/**
 * The grid as the controller sees it: {@link SchedulerJobRunner}, the controller's `JobRunner`
 * over the scheduler and the host agents (jobs of an app, their logs, one-off jobs).
 * @module
 */
export { SchedulerJobRunner, SCHEDULER_JOB_RUNNER_DEFAULTS } from './job-runner.js';
export type { SchedulerJobRunnerOptions } from './job-runner.js';
export { JOBS_TRACE_CHANNEL } from './job-answers.js';
export { StoreFormationSource, STORE_FORMATION_DEFAULTS, toSchedulerFormation } from './formation-source.js';
export type { StoreFormationSourceOptions } from './formation-source.js';
