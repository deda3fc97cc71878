import { FlynnError, InvalidInputError, NotFoundError, type ErrorKind, type FlynnErrorOptions } from '../common/errors.js';

export const TaffyErrorCodes = Object.freeze({
  INVALID_SOURCE: 'FLYNN_ERR_TAFFY_INVALID_SOURCE',
  NO_SUCH_REF: 'FLYNN_ERR_TAFFY_NO_SUCH_REF',
  NO_REPOSITORY: 'FLYNN_ERR_TAFFY_NO_REPOSITORY',
  UNREACHABLE: 'FLYNN_ERR_TAFFY_UNREACHABLE',
  NEEDS_CREDENTIALS: 'FLYNN_ERR_TAFFY_NEEDS_CREDENTIALS',
  FETCH_FAILED: 'FLYNN_ERR_TAFFY_FETCH_FAILED',
});

/** A git URL or ref that is refused before anything is fetched (scheme, shape, file:// where not allowed). */
export class TaffySourceError extends InvalidInputError {
  constructor(field: 'url' | 'ref', message: string) {
    super(TaffyErrorCodes.INVALID_SOURCE, message, { field });
  }
}

/** The repository answered but has no such branch, tag or commit. */
export class TaffyRefNotFoundError extends NotFoundError {
  constructor(message: string, options: FlynnErrorOptions = {}) {
    super(TaffyErrorCodes.NO_SUCH_REF, message, options);
  }
}

const FETCH_KINDS: Record<string, ErrorKind> = {
  [TaffyErrorCodes.NO_REPOSITORY]: 'not_found',
  [TaffyErrorCodes.UNREACHABLE]: 'unavailable',
  [TaffyErrorCodes.NEEDS_CREDENTIALS]: 'forbidden',
};

/** Fetching failed: no repository at the URL, it cannot be reached, it wants credentials, or git failed otherwise. */
export class TaffyFetchError extends FlynnError {
  constructor(code: string, message: string, options: FlynnErrorOptions = {}) {
    super(code, FETCH_KINDS[code] ?? 'internal', message, options);
  }
}
