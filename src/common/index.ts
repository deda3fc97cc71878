/**
 * What every component shares and a user of several needs: the logger components take
 * (`logger` option), the per-component keys derived from the cluster key (docs/security.md) and
 * the `Closable` handle shape. The error contract is `flynn-ts/errors`; the HTTP plumbing
 * (server, client, Server-Sent Events) stays internal.
 * @module
 */
export { silentLogger, createConsoleLogger } from './logger.js';
export type { Logger, LogLevel, ConsoleLoggerOptions } from './logger.js';
export type { Closable } from './lifecycle.js';
export { componentKey } from './http/key-auth.js';
export type { KeyedComponent } from './http/key-auth.js';
export type { TlsTrust } from './tls/pin.js';
