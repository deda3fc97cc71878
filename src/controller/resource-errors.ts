/** The errors of the providers and resources API (resources.ts). */
import { ConflictError, NotFoundError } from '../common/errors.js';

export const ResourceErrorCodes = Object.freeze({
  PROVIDER_NOT_FOUND: 'FLYNN_ERR_CONTROLLER_PROVIDER_NOT_FOUND',
  RESOURCE_EXISTS: 'FLYNN_ERR_CONTROLLER_RESOURCE_EXISTS',
  RESOURCE_NOT_FOUND: 'FLYNN_ERR_CONTROLLER_RESOURCE_NOT_FOUND',
});

export class ProviderNotFoundError extends NotFoundError {
  constructor(name: string, known: string[]) {
    super(ResourceErrorCodes.PROVIDER_NOT_FOUND, `no provider named ${JSON.stringify(name)} (providers: ${known.join(', ')})`, { detail: { provider: name } });
  }
}

export class ResourceExistsError extends ConflictError {
  constructor(message: string) {
    super(ResourceErrorCodes.RESOURCE_EXISTS, message);
  }
}

export class ResourceNotFoundError extends NotFoundError {
  constructor(id: string) {
    super(ResourceErrorCodes.RESOURCE_NOT_FOUND, `no resource ${JSON.stringify(id)}`, { detail: { id } });
  }
}
