/**
 * What every component shares and a user of several needs: the logger components take
 * (`logger` option), the per-component keys derived from the cluster key (docs/security.md) and
 * the `Closable` handle shape, the `Clock` timing policy runs on (tests pass a `ManualClock`) and
 * `until`, the one way to wait on a stream. The error contract is `flynn-ts/errors`; the HTTP plumbing
 * (server, client, Server-Sent Events) stays internal.
 * @module
 */
export { silentLogger, createConsoleLogger } from './logger.js';
export type { Logger, LogLevel, ConsoleLoggerOptions } from './logger.js';
export type { Closable } from './lifecycle.js';
export { componentKey } from './http/key-auth.js';
export type { KeyedComponent } from './http/key-auth.js';
export type { TlsTrust } from './tls/pin.js';
export { systemClock, ManualClock, after, every } from './clock.js';
export type { Clock, SleepOptions, TimerOptions } from './clock.js';
export { until, WaitTimeoutError, WaitEndedError, WaitErrorCodes } from './until.js';
export type { StreamSource, UntilOptions } from './until.js';
