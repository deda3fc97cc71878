import { FlynnError, InvalidInputError, type FlynnErrorOptions } from '../common/errors.js';

export const GitErrorCodes = Object.freeze({
  INVALID_HOST_KEY: 'FLYNN_ERR_GIT_INVALID_HOST_KEY',
  INVALID_OPTIONS: 'FLYNN_ERR_GIT_INVALID_OPTIONS',
  PUSH_REJECTED: 'FLYNN_ERR_GIT_PUSH_REJECTED',
});

export class GitOptionsError extends InvalidInputError {
  constructor(message: string, field: string) {
    super(GitErrorCodes.INVALID_OPTIONS, message, { field });
  }
}

/** Thrown by a push handler to reject a push; its message is shown to the pusher. */
export class PushRejectedError extends FlynnError {
  constructor(message: string, options: FlynnErrorOptions = {}) {
    super(GitErrorCodes.PUSH_REJECTED, 'conflict', message, options);
  }
}
