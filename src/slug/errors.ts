import { FlynnError, InvalidInputError, type FlynnErrorOptions } from '../common/errors.js';

export const SlugErrorCodes = Object.freeze({
  INVALID_INPUT: 'FLYNN_ERR_SLUG_INVALID_INPUT',
  BUILD_FAILED: 'FLYNN_ERR_SLUG_BUILD_FAILED',
  BUILD_TIMEOUT: 'FLYNN_ERR_SLUG_BUILD_TIMEOUT',
  BUILD_ABORTED: 'FLYNN_ERR_SLUG_BUILD_ABORTED',
  EXECUTOR_UNAVAILABLE: 'FLYNN_ERR_SLUG_EXECUTOR_UNAVAILABLE',
});

/** Bad build input: an app name, a config var name, a source tar entry, a buildpack reference. */
export class SlugInputError extends InvalidInputError {
  constructor(message: string, options: FlynnErrorOptions & { field?: string } = {}) {
    super(SlugErrorCodes.INVALID_INPUT, message, options);
  }
}

/**
 * A build that did not produce a slug. `step` names where it stopped (`unpack source`, `detect`,
 * `compile nodejs`, `release static`, `store slug`, ...); `output` holds the last lines the build
 * printed. Nothing was stored in shelf: no slug and no cache.
 */
export class BuildFailedError extends FlynnError {
  readonly step: string;
  readonly output: string[];

  constructor(step: string, reason: string, options: FlynnErrorOptions & { output?: string[]; code?: string } = {}) {
    const { output = [], code = SlugErrorCodes.BUILD_FAILED, ...rest } = options;
    const kind = code === SlugErrorCodes.BUILD_TIMEOUT ? 'timeout' : code === SlugErrorCodes.EXECUTOR_UNAVAILABLE ? 'unavailable' : code === SlugErrorCodes.INVALID_INPUT ? 'invalid' : 'internal';
    super(code, kind, `build failed at step "${step}": ${reason}`, { ...rest, retryable: code === SlugErrorCodes.EXECUTOR_UNAVAILABLE, detail: { step, reason, output } });
    this.step = step;
    this.output = output;
  }
}
