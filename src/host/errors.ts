import { ConflictError, FlynnError, InvalidInputError, NotFoundError, UnauthorizedError, UnavailableError, type FlynnErrorOptions } from '../common/errors.js';
import type { ExitStatus, Job, JobError } from './types.js';

export const HostErrorCodes = Object.freeze({
  INVALID_JOB: 'FLYNN_ERR_HOST_INVALID_JOB',
  INVALID_CONFIG: 'FLYNN_ERR_HOST_INVALID_CONFIG',
  JOB_NOT_FOUND: 'FLYNN_ERR_HOST_JOB_NOT_FOUND',
  JOB_EXISTS: 'FLYNN_ERR_HOST_JOB_EXISTS',
  JOB_NOT_RUNNING: 'FLYNN_ERR_HOST_JOB_NOT_RUNNING',
  /** A job exited with a non-zero code (its `error.code` once `crashed`). */
  JOB_CRASHED: 'FLYNN_ERR_HOST_JOB_CRASHED',
  /** A job was killed over its memory limit (its `error.code` once `crashed`). */
  JOB_OOM: 'FLYNN_ERR_HOST_JOB_OOM',
  NO_CAPACITY: 'FLYNN_ERR_HOST_NO_CAPACITY',
  NO_PORTS: 'FLYNN_ERR_HOST_NO_PORTS',
  RUNTIME: 'FLYNN_ERR_HOST_RUNTIME',
  DOCKER_UNAVAILABLE: 'FLYNN_ERR_HOST_DOCKER_UNAVAILABLE',
  IMAGE_BUILD: 'FLYNN_ERR_HOST_IMAGE_BUILD',
  /** A tool an image build needs (mmdebstrap) is not installed. */
  IMAGE_TOOL_MISSING: 'FLYNN_ERR_HOST_IMAGE_TOOL_MISSING',
  ARTIFACT_FETCH: 'FLYNN_ERR_HOST_ARTIFACT_FETCH',
  /** A job's image archive did not load into the engine, or held another image. */
  IMAGE_LOAD: 'FLYNN_ERR_HOST_IMAGE_LOAD',
  UNAUTHORIZED: 'FLYNN_ERR_HOST_UNAUTHORIZED',
  VOLUME_NOT_FOUND: 'FLYNN_ERR_HOST_VOLUME_NOT_FOUND',
  VOLUME_EXISTS: 'FLYNN_ERR_HOST_VOLUME_EXISTS',
  VOLUME_IN_USE: 'FLYNN_ERR_HOST_VOLUME_IN_USE',
  VOLUMES_UNSUPPORTED: 'FLYNN_ERR_HOST_VOLUMES_UNSUPPORTED',
});

/** A request to the agent's API without the host key, or with a wrong one (HTTP 401). */
export class HostUnauthorizedError extends UnauthorizedError {
  constructor(message: string) {
    super(HostErrorCodes.UNAUTHORIZED, message);
  }
}

/** A job spec, query or config the agent refuses. `detail.field` names the field. */
export class HostInputError extends InvalidInputError {
  constructor(message: string, field: string, code: string = HostErrorCodes.INVALID_JOB) {
    super(code, message, { field });
  }
}

export class JobNotFoundError extends NotFoundError {
  constructor(id: string) {
    super(HostErrorCodes.JOB_NOT_FOUND, `no job with id ${id} on this host`);
  }
}

export class JobExistsError extends ConflictError {
  constructor(id: string) {
    super(HostErrorCodes.JOB_EXISTS, `a job with id ${id} already exists on this host`);
  }
}

/** The job is not running (signal/stop of a finished job). */
export class JobNotRunningError extends ConflictError {
  constructor(id: string, state: string) {
    super(HostErrorCodes.JOB_NOT_RUNNING, `job ${id} is ${state}, not running`);
  }
}

/** Why a job ended `crashed`: a non-zero exit, or killed over its memory limit. Recorded on the job as its `error` ({@link jobErrorOf}). */
export class JobCrashedError extends FlynnError {
  constructor(job: Pick<Job, 'id' | 'limits'>, exit: ExitStatus) {
    const oom = exit.reason === 'oom';
    super(
      oom ? HostErrorCodes.JOB_OOM : HostErrorCodes.JOB_CRASHED,
      'internal',
      oom ? `job ${job.id} exceeded its memory limit of ${job.limits.memoryBytes} bytes and was killed` : `job ${job.id} exited with code ${exit.code}`,
    );
  }
}

/** An error as a job records it (`Job.error`): a FlynnError's code and message; anything else is a runtime error. */
export function jobErrorOf(err: unknown): JobError {
  return err instanceof FlynnError ? { code: err.code, message: err.message } : { code: HostErrorCodes.RUNTIME, message: (err as Error).message };
}

/** The host cannot take the job: its memory capacity or its port range is exhausted. */
export class CapacityError extends ConflictError {
  constructor(code: typeof HostErrorCodes.NO_CAPACITY | typeof HostErrorCodes.NO_PORTS, message: string) {
    super(code, message, { retryable: true });
  }
}

/** The runtime (Docker engine, child process spawn) refused an operation. */
export class RuntimeError extends FlynnError {
  constructor(message: string, options: FlynnErrorOptions = {}) {
    super(HostErrorCodes.RUNTIME, 'internal', message, options);
  }
}

export class DockerUnavailableError extends UnavailableError {
  constructor(message: string, options: FlynnErrorOptions = {}) {
    super(HostErrorCodes.DOCKER_UNAVAILABLE, message, options);
  }
}

export type RuntimeImageErrorCode = typeof HostErrorCodes.IMAGE_BUILD | typeof HostErrorCodes.IMAGE_TOOL_MISSING | typeof HostErrorCodes.DOCKER_UNAVAILABLE;

/** The runtime or stack image could not be built: a host file or tool is missing, or Docker refused or cannot be reached. */
export class RuntimeImageError extends FlynnError {
  constructor(code: RuntimeImageErrorCode, message: string, options: FlynnErrorOptions = {}) {
    super(code, code === HostErrorCodes.DOCKER_UNAVAILABLE ? 'unavailable' : 'internal', message, options);
  }
}

/** The agent could not download a job's artifact; the job fails without starting. */
export class ArtifactFetchError extends FlynnError {
  constructor(message: string, options: FlynnErrorOptions = {}) {
    super(HostErrorCodes.ARTIFACT_FETCH, 'unavailable', message, { retryable: true, ...options });
  }
}

/** No volume of that name on this host (HTTP 404). */
export class VolumeNotFoundError extends NotFoundError {
  constructor(name: string, hostId: string) {
    super(HostErrorCodes.VOLUME_NOT_FOUND, `no volume named ${name} on host ${hostId}`);
  }
}

/** A volume of that name exists already (HTTP 409). */
export class VolumeExistsError extends ConflictError {
  constructor(name: string) {
    super(HostErrorCodes.VOLUME_EXISTS, `a volume named ${name} already exists on this host`);
  }
}

/** A live job uses the volume: it cannot be deleted (HTTP 409). */
export class VolumeInUseError extends ConflictError {
  constructor(name: string, jobId: string) {
    super(HostErrorCodes.VOLUME_IN_USE, `volume ${name} is in use by job ${jobId}: stop the job first`);
  }
}

/** A job's image archive (a Dockerfile app's `docker save`) could not be loaded, or did not hold the job's image; the job fails without starting. */
export class ImageLoadError extends FlynnError {
  constructor(message: string, options: FlynnErrorOptions = {}) {
    super(HostErrorCodes.IMAGE_LOAD, 'internal', message, options);
  }
}
