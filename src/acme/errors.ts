import { InvalidInputError } from '../common/errors.js';

export const AcmeErrorCodes = Object.freeze({
  INVALID_OPTIONS: 'FLYNN_ERR_ACME_INVALID_OPTIONS',
});

/** An ACME option that cannot be used; `detail.field` names it. */
export class AcmeInputError extends InvalidInputError {}
