import { FlynnError, InvalidInputError, UnavailableError, type FlynnErrorOptions } from '../common/errors.js';

export const SchedulerErrorCodes = Object.freeze({
  INVALID_FORMATION: 'FLYNN_ERR_SCHEDULER_INVALID_FORMATION',
  INVALID_OPTIONS: 'FLYNN_ERR_SCHEDULER_INVALID_OPTIONS',
  INVALID_HOST: 'FLYNN_ERR_SCHEDULER_INVALID_HOST',
  INVALID_JOB: 'FLYNN_ERR_SCHEDULER_INVALID_JOB',
  NOT_LEADER: 'FLYNN_ERR_SCHEDULER_NOT_LEADER',
  NO_HOST: 'FLYNN_ERR_SCHEDULER_NO_HOST',
  HOST_UNAVAILABLE: 'FLYNN_ERR_SCHEDULER_HOST_UNAVAILABLE',
});

/** Bad input: a malformed formation, options, host registration or job request. */
export class SchedulerInputError extends InvalidInputError {}

/** Only the leading instance places jobs; ask again (on the leader, or later). Retryable. */
export class NotLeaderError extends UnavailableError {
  constructor(schedulerId: string, options: FlynnErrorOptions = {}) {
    super(SchedulerErrorCodes.NOT_LEADER, `scheduler ${schedulerId} is not the leader`, options);
  }
}

/** A one-off job fits on no host (tags, capacity, or no hosts at all). */
export class NoHostError extends FlynnError {
  constructor(message: string, options: FlynnErrorOptions = {}) {
    super(SchedulerErrorCodes.NO_HOST, 'unavailable', message, { retryable: true, ...options });
  }
}

/** A host agent did not answer or refused a call. Retryable. */
export class HostUnavailableError extends UnavailableError {
  constructor(hostId: string, message: string, options: FlynnErrorOptions = {}) {
    super(SchedulerErrorCodes.HOST_UNAVAILABLE, `host ${hostId}: ${message}`, options);
  }
}
