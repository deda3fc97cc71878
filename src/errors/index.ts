/**
 * The error contract of flynn-ts: every error thrown across a module boundary is a
 * {@link FlynnError} with a stable `code`; over HTTP it travels as a {@link WireError} with the status
 * of its kind, and the typed clients rebuild the same class ({@link errorFromWire}). See docs/errors.md.
 *
 * ```ts
 * import { FlynnError, NotFoundError } from 'flynn-ts/errors';
 * try { await client.getApp('nope'); } catch (err) { if (err instanceof NotFoundError) console.log(err.code); }
 * ```
 * @module
 */
export {
  FlynnError,
  InvalidInputError,
  NotFoundError,
  ConflictError,
  UnauthorizedError,
  UnavailableError,
  TimeoutError,
  ClosedError,
  STATUS_BY_KIND,
  errorFromWire,
} from '../common/errors.js';
export type { ErrorKind, WireError, FlynnErrorOptions } from '../common/errors.js';
