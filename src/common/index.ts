/**
 * Shared building blocks of flynn-ts: the error contract, logging, lifecycle helpers and the
 * HTTP plumbing (JSON API server, typed client, Server-Sent Events) every component uses.
 * @module
 */
export {
  FlynnError,
  InvalidInputError,
  NotFoundError,
  ConflictError,
  UnauthorizedError,
  UnavailableError,
  TimeoutError,
  ClosedError,
  STATUS_BY_KIND,
  errorFromWire,
} from './errors.js';
export type { ErrorKind, WireError, FlynnErrorOptions } from './errors.js';
export { silentLogger, createConsoleLogger } from './logger.js';
export type { Logger, LogLevel, ConsoleLoggerOptions } from './logger.js';
export { AsyncQueue } from './async-queue.js';
export { CloseGuard, childSignal, sleep } from './lifecycle.js';
export { systemClock, ManualClock } from './clock.js';
export type { Clock } from './clock.js';
export { until, WaitTimeoutError, WaitEndedError, WaitErrorCodes } from './until.js';
export type { StreamSource, UntilOptions } from './until.js';
export { watchState, ChangeFlag, WATCH_STATE_DEFAULTS } from './watch.js';
export type { WatchStateOptions } from './watch.js';
export { writeFileAtomic, syncDir } from './atomic-file.js';
export type { WriteFileAtomicOptions } from './atomic-file.js';
export type { Closable } from './lifecycle.js';
export { createApiServer, listenApi } from './http/api-server.js';
export type { ApiServerOptions } from './http/api-server.js';
export { SseWriter, parseSse } from './http/sse.js';
export type { SseEvent, SseWriterOptions } from './http/sse.js';
export { HttpJsonClient } from './http/json-client.js';
export type { HttpClientOptions, RequestOptions } from './http/json-client.js';
export { componentKey, keyChecker } from './http/key-auth.js';
export type { KeyCheck, KeyedComponent } from './http/key-auth.js';
export { ATTACH_PROTOCOL, FrameChannel, FrameType, frameJson, framePipe } from './http/frames.js';
export type { Frame } from './http/frames.js';
