import { ConflictError, FlynnError, InvalidInputError, NotFoundError, TimeoutError, UnavailableError, type FlynnErrorOptions } from '../common/errors.js';

export const ControllerErrorCodes = Object.freeze({
  INVALID_INPUT: 'FLYNN_ERR_CONTROLLER_INVALID_INPUT',
  AMBIGUOUS_JOB: 'FLYNN_ERR_CONTROLLER_AMBIGUOUS_JOB',
  APP_NOT_FOUND: 'FLYNN_ERR_CONTROLLER_APP_NOT_FOUND',
  NOT_FOUND: 'FLYNN_ERR_CONTROLLER_NOT_FOUND',
  NAME_TAKEN: 'FLYNN_ERR_CONTROLLER_NAME_TAKEN',
  CONFLICT: 'FLYNN_ERR_CONTROLLER_CONFLICT',
  DEPLOY_IN_PROGRESS: 'FLYNN_ERR_CONTROLLER_DEPLOY_IN_PROGRESS',
  DEPLOY_FAILED: 'FLYNN_ERR_CONTROLLER_DEPLOY_FAILED',
  SCALE_FAILED: 'FLYNN_ERR_CONTROLLER_SCALE_FAILED',
  SCALE_TIMEOUT: 'FLYNN_ERR_CONTROLLER_SCALE_TIMEOUT',
  STORE_UNAVAILABLE: 'FLYNN_ERR_CONTROLLER_STORE_UNAVAILABLE',
  UNAUTHORIZED: 'FLYNN_ERR_CONTROLLER_UNAUTHORIZED',
  NO_SUCH_PROCESS_TYPE: 'FLYNN_ERR_CONTROLLER_NO_SUCH_PROCESS_TYPE',
  JOB_START_FAILED: 'FLYNN_ERR_CONTROLLER_JOB_START_FAILED',
  TOO_LARGE: 'FLYNN_ERR_CONTROLLER_TOO_LARGE',
  NO_GIT_DEPLOYER: 'FLYNN_ERR_CONTROLLER_NO_GIT_DEPLOYER',
});

/** A one-off job could not start on its host (e.g. its image or artifact is missing). */
export class JobStartError extends ConflictError {
  constructor(message: string) {
    super(ControllerErrorCodes.JOB_START_FAILED, message);
  }
}

/** Bad input; `detail.field` names the offending field. */
export class ControllerInputError extends InvalidInputError {
  constructor(field: string, message: string, options: FlynnErrorOptions = {}) {
    super(ControllerErrorCodes.INVALID_INPUT, message, { ...options, field });
  }
}

export class AppNotFoundError extends NotFoundError {
  constructor(app: string) {
    super(ControllerErrorCodes.APP_NOT_FOUND, `no app named or with id ${JSON.stringify(app)}`, { detail: { app } });
  }
}

/** Any other missing object: release, artifact, route, key, deployment, job, formation. */
export class ObjectNotFoundError extends NotFoundError {
  constructor(what: string, id: string) {
    super(ControllerErrorCodes.NOT_FOUND, `no ${what} ${JSON.stringify(id)}`, { detail: { object: what, id } });
  }
}

export class NameTakenError extends ConflictError {
  constructor(name: string) {
    super(ControllerErrorCodes.NAME_TAKEN, `an app named ${JSON.stringify(name)} already exists`, { detail: { field: 'name' } });
  }
}

export class ControllerConflictError extends ConflictError {
  constructor(message: string, detail?: unknown) {
    super(ControllerErrorCodes.CONFLICT, message, detail === undefined ? {} : { detail });
  }
}

export class DeployInProgressError extends ConflictError {
  constructor(appName: string, deploymentId: string) {
    super(ControllerErrorCodes.DEPLOY_IN_PROGRESS, `app ${appName} already has a deployment in progress (${deploymentId})`, { detail: { deploymentId } });
  }
}

/** A deployment whose new jobs did not come up; the old release keeps running. */
export class DeployFailedError extends FlynnError {
  constructor(message: string, options: FlynnErrorOptions = {}) {
    super(ControllerErrorCodes.DEPLOY_FAILED, 'conflict', message, options);
  }
}

/** Jobs a scale started crashed (or failed to start) instead of coming up; the count stays as asked. */
export class ScaleFailedError extends FlynnError {
  constructor(message: string, options: FlynnErrorOptions = {}) {
    super(ControllerErrorCodes.SCALE_FAILED, 'conflict', message, options);
  }
}

/** The jobs of a scale were not all up (and held up) within the wait. */
export class ScaleTimeoutError extends TimeoutError {
  constructor(message: string, options: FlynnErrorOptions = {}) {
    super(ControllerErrorCodes.SCALE_TIMEOUT, message, options);
  }
}

/** A value over one of the controller's size limits (env, a store write): 413 naming the limit. */
export class ControllerTooLargeError extends FlynnError {
  constructor(what: string, bytes: number, limit: number, field?: string) {
    super(ControllerErrorCodes.TOO_LARGE, 'too_large', `${what} is ${bytes} bytes, over the limit of ${limit} bytes`, { detail: { limit, bytes, ...(field !== undefined ? { field } : {}) } });
  }
}

export class StoreUnavailableError extends UnavailableError {
  constructor(message: string, options: FlynnErrorOptions = {}) {
    super(ControllerErrorCodes.STORE_UNAVAILABLE, message, options);
  }
}

/** A job id prefix that more than one of the app's jobs start with; `detail.candidates` lists them. */
export class AmbiguousJobError extends InvalidInputError {
  constructor(prefix: string, candidates: string[]) {
    super(ControllerErrorCodes.AMBIGUOUS_JOB, `job id prefix ${JSON.stringify(prefix)} matches ${candidates.length} jobs: ${candidates.join(', ')}`, { field: 'job', detail: { candidates } });
  }
}

/** What a {@link ProcessTypeNotFoundError} carries in `detail`. */
export interface ProcessTypeNotFoundDetail {
  /** `processes.<type>`: the request field. */
  field: string;
  app: string;
  /** The release's version. */
  version: number;
  /** The type asked for. */
  type: string;
  /** The types the release has. */
  types: string[];
}

/** A scale (formation) of a process type the release does not have; `detail.types` lists those it has. */
export class ProcessTypeNotFoundError extends InvalidInputError {
  declare readonly detail: ProcessTypeNotFoundDetail;

  constructor(detail: Omit<ProcessTypeNotFoundDetail, 'field'>) {
    const has = detail.types.length === 0 ? 'it has no process types' : `its process types: ${detail.types.join(', ')}`;
    super(ControllerErrorCodes.NO_SUCH_PROCESS_TYPE, `release v${detail.version} of ${detail.app} has no process type ${JSON.stringify(detail.type)} (${has})`, {
      field: `processes.${detail.type}`,
      detail: { app: detail.app, version: detail.version, type: detail.type, types: [...detail.types] },
    });
  }
}

/**
 * The controller's own class of an error its server sent, rebuilt from the code and detail (the
 * generic HTTP client gives the base class of the status); other errors are returned as they are.
 */
export function controllerError(err: unknown): unknown {
  if (!(err instanceof FlynnError) || err.code !== ControllerErrorCodes.NO_SUCH_PROCESS_TYPE) return err;
  const d = err.detail as Partial<ProcessTypeNotFoundDetail> | undefined;
  if (typeof d?.app !== 'string' || typeof d.version !== 'number' || typeof d.type !== 'string' || !Array.isArray(d.types)) return err;
  return new ProcessTypeNotFoundError({ app: d.app, version: d.version, type: d.type, types: d.types.map(String) });
}
