import { InvalidInputError } from '../common/errors.js';

export const BootstrapErrorCodes = Object.freeze({
  INVALID_OPTIONS: 'FLYNN_ERR_BOOTSTRAP_INVALID_OPTIONS',
  /** A component did not come up in time while the cluster started. */
  NOT_READY: 'FLYNN_ERR_BOOTSTRAP_NOT_READY',
});

/** Cluster options that cannot be used. `detail.field` names the option. */
export class BootstrapInputError extends InvalidInputError {
  constructor(message: string, field: string) {
    super(BootstrapErrorCodes.INVALID_OPTIONS, message, { field });
  }
}
