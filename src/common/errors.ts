/**
 * The one error contract of flynn-ts. Every error thrown across a module boundary is a
 * {@link FlynnError} with a stable `code` (`FLYNN_ERR_<MODULE>_<WHAT>`); callers match on `code`
 * or on the class, never on message text. Over HTTP the error travels as {@link WireError}, with the
 * status taken from {@link STATUS_BY_KIND}, and clients rebuild the same class with {@link errorFromWire}.
 */

/** What went wrong, in the terms an HTTP status speaks. Decides the status and the class. */
export type ErrorKind =
  | 'invalid'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'too_large'
  | 'unavailable'
  | 'timeout'
  | 'closed'
  | 'internal';

/** The one kind → HTTP status table. */
export const STATUS_BY_KIND: Readonly<Record<ErrorKind, number>> = Object.freeze({
  invalid: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  unavailable: 503,
  timeout: 504,
  closed: 503,
  internal: 500,
});

/** An error as it travels in an HTTP response body. */
export interface WireError {
  code: string;
  message: string;
  detail?: unknown;
  retryable: boolean;
}

export interface FlynnErrorOptions {
  cause?: unknown;
  /** Structured context, e.g. `{ field: 'service' }` for bad input. Sent over the wire. */
  detail?: unknown;
  /** Whether trying the same call again may succeed. Defaults by kind. */
  retryable?: boolean;
}

const RETRYABLE_KINDS: ReadonlySet<ErrorKind> = new Set(['unavailable', 'timeout']);

export class FlynnError extends Error {
  readonly code: string;
  readonly kind: ErrorKind;
  readonly retryable: boolean;
  readonly detail?: unknown;

  constructor(code: string, kind: ErrorKind, message: string, options: FlynnErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.kind = kind;
    this.retryable = options.retryable ?? RETRYABLE_KINDS.has(kind);
    if (options.detail !== undefined) this.detail = options.detail;
  }

  /** The HTTP status this error is answered with. */
  get status(): number {
    return STATUS_BY_KIND[this.kind];
  }

  toWire(): WireError {
    const wire: WireError = { code: this.code, message: this.message, retryable: this.retryable };
    if (this.detail !== undefined) wire.detail = this.detail;
    return wire;
  }
}

/** Bad input from the caller. `detail.field` names the offending field when there is one. */
export class InvalidInputError extends FlynnError {
  constructor(code: string, message: string, options: FlynnErrorOptions & { field?: string } = {}) {
    const { field, ...rest } = options;
    super(code, 'invalid', message, field === undefined ? rest : { ...rest, detail: { field, ...(rest.detail as object | undefined) } });
  }
}

export class NotFoundError extends FlynnError {
  constructor(code: string, message: string, options: FlynnErrorOptions = {}) {
    super(code, 'not_found', message, options);
  }
}

export class ConflictError extends FlynnError {
  constructor(code: string, message: string, options: FlynnErrorOptions = {}) {
    super(code, 'conflict', message, options);
  }
}

export class UnauthorizedError extends FlynnError {
  constructor(code: string, message: string, options: FlynnErrorOptions = {}) {
    super(code, 'unauthorized', message, options);
  }
}

/** A dependency (etcd, Docker, another component's API) cannot be reached. Retryable. */
export class UnavailableError extends FlynnError {
  constructor(code: string, message: string, options: FlynnErrorOptions = {}) {
    super(code, 'unavailable', message, options);
  }
}

export class TimeoutError extends FlynnError {
  constructor(code: string, message: string, options: FlynnErrorOptions = {}) {
    super(code, 'timeout', message, options);
  }
}

/** A call on something already closed. */
export class ClosedError extends FlynnError {
  constructor(what: string) {
    super('FLYNN_ERR_CLOSED', 'closed', `${what} is closed`, { retryable: false });
  }
}

const KIND_BY_STATUS = new Map<number, ErrorKind>(
  (Object.entries(STATUS_BY_KIND) as [ErrorKind, number][])
    .filter(([kind]) => kind !== 'closed')
    .map(([kind, status]) => [status, kind]),
);

/** Rebuild the error a server sent. Unknown shapes become an `internal` error that keeps the body. */
export function errorFromWire(status: number, body: unknown): FlynnError {
  const wire = isWireError(body) ? body : undefined;
  const code = wire?.code ?? `FLYNN_ERR_HTTP_${status}`;
  const message = wire?.message ?? `HTTP ${status}`;
  const kind: ErrorKind = code === 'FLYNN_ERR_CLOSED' ? 'closed' : (KIND_BY_STATUS.get(status) ?? (status >= 500 ? 'internal' : 'invalid'));
  const options: FlynnErrorOptions = { detail: wire ? wire.detail : body };
  if (wire) options.retryable = wire.retryable;
  switch (kind) {
    case 'invalid':
      return new InvalidInputError(code, message, options);
    case 'not_found':
      return new NotFoundError(code, message, options);
    case 'conflict':
      return new ConflictError(code, message, options);
    case 'unauthorized':
      return new UnauthorizedError(code, message, options);
    case 'unavailable':
      return new UnavailableError(code, message, options);
    case 'timeout':
      return new TimeoutError(code, message, options);
    default:
      return new FlynnError(code, kind, message, options);
  }
}

function isWireError(body: unknown): body is WireError {
  return typeof body === 'object' && body !== null && typeof (body as WireError).code === 'string' && typeof (body as WireError).message === 'string';
}
