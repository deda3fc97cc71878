import { ConflictError, FlynnError, InvalidInputError, NotFoundError, UnauthorizedError, type FlynnErrorOptions } from '../common/errors.js';

export const ShelfErrorCodes = Object.freeze({
  INVALID_PATH: 'FLYNN_ERR_SHELF_INVALID_PATH',
  NOT_FOUND: 'FLYNN_ERR_SHELF_NOT_FOUND',
  TOO_LARGE: 'FLYNN_ERR_SHELF_TOO_LARGE',
  INVALID_RANGE: 'FLYNN_ERR_SHELF_INVALID_RANGE',
  METHOD_NOT_ALLOWED: 'FLYNN_ERR_SHELF_METHOD_NOT_ALLOWED',
  UPLOAD_ABORTED: 'FLYNN_ERR_SHELF_UPLOAD_ABORTED',
  PATH_CONFLICT: 'FLYNN_ERR_SHELF_PATH_CONFLICT',
  UNAUTHORIZED: 'FLYNN_ERR_SHELF_UNAUTHORIZED',
  INVALID_OPTIONS: 'FLYNN_ERR_SHELF_INVALID_OPTIONS',
});

/** A write or listing without the shelf key, or with a wrong one (HTTP 401). */
export class ShelfUnauthorizedError extends UnauthorizedError {
  constructor(message: string, options: FlynnErrorOptions = {}) {
    super(ShelfErrorCodes.UNAUTHORIZED, message, options);
  }
}

/** A blob path that is empty, escapes the root (`..`), holds a NUL or a control character, or is too long. */
export class InvalidBlobPathError extends InvalidInputError {
  constructor(message: string, options: FlynnErrorOptions = {}) {
    super(ShelfErrorCodes.INVALID_PATH, message, { ...options, field: 'path' });
  }
}

export class BlobNotFoundError extends NotFoundError {
  constructor(path: string, options: FlynnErrorOptions = {}) {
    super(ShelfErrorCodes.NOT_FOUND, `no blob at ${path}`, { ...options, detail: { path } });
  }
}

/** An upload larger than the store accepts. Nothing is stored. */
export class BlobTooLargeError extends FlynnError {
  constructor(maxBytes: number, options: FlynnErrorOptions = {}) {
    super(ShelfErrorCodes.TOO_LARGE, 'too_large', `blob is larger than the ${maxBytes} bytes this shelf accepts`, { ...options, detail: { maxBytes } });
  }
}

/** A range that does not overlap the blob (HTTP 416 over the wire). */
export class InvalidRangeError extends InvalidInputError {
  constructor(message: string, readonly size: number, options: FlynnErrorOptions = {}) {
    super(ShelfErrorCodes.INVALID_RANGE, message, { ...options, detail: { size } });
  }
}

/** The uploaded body ended early (the client went away). Nothing is stored. */
export class UploadAbortedError extends InvalidInputError {
  constructor(path: string, options: FlynnErrorOptions = {}) {
    super(ShelfErrorCodes.UPLOAD_ABORTED, `upload of ${path} ended before it was complete; nothing stored`, options);
  }
}

/** A path that is both a blob and a directory of blobs (`/a` when `/a/b` exists, or the reverse). */
export class BlobPathConflictError extends ConflictError {
  constructor(path: string, options: FlynnErrorOptions = {}) {
    super(ShelfErrorCodes.PATH_CONFLICT, `${path} conflicts with an existing blob or directory of blobs`, { ...options, detail: { path } });
  }
}
