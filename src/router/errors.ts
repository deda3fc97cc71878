import { ConflictError, FlynnError, InvalidInputError, type FlynnErrorOptions } from '../common/errors.js';

export const RouterErrorCodes = Object.freeze({
  INVALID_ROUTE: 'FLYNN_ERR_ROUTER_INVALID_ROUTE',
  INVALID_OPTIONS: 'FLYNN_ERR_ROUTER_INVALID_OPTIONS',
  ROUTE_CONFLICT: 'FLYNN_ERR_ROUTER_ROUTE_CONFLICT',
  LISTEN_FAILED: 'FLYNN_ERR_ROUTER_LISTEN_FAILED',
});

/** A route or router option that cannot be used; `detail.field` names the field. */
export class RouterInputError extends InvalidInputError {}

/** Two routes claim the same domain+path or the same TCP port. */
export class RouteConflictError extends ConflictError {
  constructor(message: string, options: FlynnErrorOptions = {}) {
    super(RouterErrorCodes.ROUTE_CONFLICT, message, options);
  }
}

/** A listener (HTTP, HTTPS or a TCP route port) could not be opened. */
export class RouterListenError extends FlynnError {
  constructor(message: string, options: FlynnErrorOptions = {}) {
    super(RouterErrorCodes.LISTEN_FAILED, 'internal', message, options);
  }
}
