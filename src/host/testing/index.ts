/**
 * The runtime conformance suite, for users' own {@link Runtime} backends (runs inside vitest):
 *
 * ```ts
 * import { describeRuntime } from 'flynn-ts/host/testing';
 * describeRuntime('mine', () => new MyRuntime());
 * ```
 * @module
 */
export { describeRuntime } from './runtime-conformance.js';
export type { RuntimeSuiteOptions } from './runtime-conformance.js';
