/**
 * The cluster scheduler (Flynn's sampi): one leader elected through discovery keeps every app's
 * formation running on the hosts — spread, tag- and capacity-aware placement, crash restarts with
 * backoff (carried over to a new leader), rescheduling of lost hosts' jobs, rebalancing onto hosts that join.
 *
 * ```ts
 * import { startScheduler, MemoryFormationSource } from 'flynn-ts/scheduler';
 * const formations = new MemoryFormationSource();
 * await using scheduler = await startScheduler({ discovery, formations, connectHost });
 * formations.put({ app: 'web', release: 'v1', processes: { web: 3 }, spec: { web: { image, cmd: ['start', 'web'] } } });
 * for await (const event of scheduler.events()) console.log(event.type);
 * ```
 * @module
 */
export { startScheduler, SCHEDULER_DEFAULTS } from './scheduler.js';
export type { Scheduler, SchedulerOptions, SchedulerTiming, SchedulerEventsOptions, LeadershipState } from './scheduler.js';
export type { OneOffRequest } from './term-options.js';
export type { FormationSource, FormationEvent } from './formation-source.js';
export { MemoryFormationSource } from './memory-formation-source.js';
export { HOST_SERVICE, JOB_LABELS, hostInfoFromInstance, hostMeta } from './host-client.js';
export type { SchedulerHost, HostConnector, HostInfo, HostCapacity, HostJob, JobEvent, StartJobRequest } from './host-client.js';
export { hostAgentConnector } from './host-agent-connector.js';
export type { HostAgentApi, AgentJob, AgentJobRequest, HostAgentConnectorOptions } from './host-agent-connector.js';
export { BACKOFF_DEFAULTS, restartDelay } from './backoff.js';
export type { BackoffOptions } from './backoff.js';
export { MemoryStateStore, backoffRecords, restartsFromRecords } from './backoff-ledger.js';
export type { StateStore, BackoffRecord, BackoffStateInput, RestoreInput } from './backoff-ledger.js';
export { plan } from './reconcile.js';
export type { PlanInput, Plan, PendingRestart, PlannedStart, PlannedStop, PlannedBlock, RebalanceMove } from './reconcile.js';
export { recoverRestarts } from './recovery.js';
export type { RecoverInput } from './recovery.js';
export { tagsMatch } from './placement.js';
export { validateFormation } from './validate.js';
export { formationKey, LIVE_STATES, HOST_ID_TAG } from './types.js';
export type {
  Formation,
  ProcessSpec,
  JobState,
  ScheduledJob,
  SchedulerEvent,
  SchedulerEventType,
  SchedulerView,
  HostView,
  FormationView,
  ProcessView,
  BlockedReason,
  StopReason,
} from './types.js';
export { SchedulerErrorCodes, SchedulerInputError, NotLeaderError, NoHostError, HostUnavailableError } from './errors.js';
