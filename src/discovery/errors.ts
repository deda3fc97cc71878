import { InvalidInputError, NotFoundError, UnauthorizedError, UnavailableError, type FlynnErrorOptions } from '../common/errors.js';

export const DiscoveryErrorCodes = Object.freeze({
  INVALID_SERVICE: 'FLYNN_ERR_DISCOVERY_INVALID_SERVICE',
  INVALID_ADDR: 'FLYNN_ERR_DISCOVERY_INVALID_ADDR',
  INVALID_META: 'FLYNN_ERR_DISCOVERY_INVALID_META',
  INVALID_TTL: 'FLYNN_ERR_DISCOVERY_INVALID_TTL',
  INVALID_PROTO: 'FLYNN_ERR_DISCOVERY_INVALID_PROTO',
  INVALID_CONFIG: 'FLYNN_ERR_DISCOVERY_INVALID_CONFIG',
  INVALID_REQUEST: 'FLYNN_ERR_DISCOVERY_INVALID_REQUEST',
  INSTANCE_NOT_FOUND: 'FLYNN_ERR_DISCOVERY_INSTANCE_NOT_FOUND',
  BACKEND_UNAVAILABLE: 'FLYNN_ERR_DISCOVERY_UNAVAILABLE',
  UNAUTHORIZED: 'FLYNN_ERR_DISCOVERY_UNAUTHORIZED',
});

/** A request to the discovery server without its key, or with a wrong one (HTTP 401). */
export class DiscoveryUnauthorizedError extends UnauthorizedError {
  constructor(message: string) {
    super(DiscoveryErrorCodes.UNAUTHORIZED, message);
  }
}

export class DiscoveryInputError extends InvalidInputError {}

export class InstanceNotFoundError extends NotFoundError {
  constructor(id: string, options: FlynnErrorOptions = {}) {
    super(DiscoveryErrorCodes.INSTANCE_NOT_FOUND, `no live instance with id ${id}`, { detail: { id }, ...options });
  }
}

export class DiscoveryUnavailableError extends UnavailableError {
  constructor(message: string, options: FlynnErrorOptions = {}) {
    super(DiscoveryErrorCodes.BACKEND_UNAVAILABLE, message, options);
  }
}
