import { FlynnError } from '../common/errors.js';

export const CliErrorCodes = Object.freeze({
  USAGE: 'FLYNN_ERR_CLI_USAGE',
  FAILED: 'FLYNN_ERR_CLI_FAILED',
});

/** A CLI failure with a one-line message; `exitCode` 2 for usage errors, 1 otherwise. */
export class CliError extends FlynnError {
  readonly exitCode: number;

  constructor(message: string, options: { usage?: boolean } = {}) {
    super(options.usage ? CliErrorCodes.USAGE : CliErrorCodes.FAILED, 'invalid', message);
    this.exitCode = options.usage ? 2 : 1;
  }
}
