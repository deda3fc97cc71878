/**
 * Fakes for testing code that drives the scheduler, and for the scheduler's own suites: fake host
 * agents on an in-memory discovery registry, and discovery handles that can die like a process.
 * @module
 */
export { FakeCluster, FakeHost } from './fake-hosts.js';
export type { FakeClusterOptions, FakeHostOptions } from './fake-hosts.js';
export { MortalDiscovery } from './mortal-discovery.js';
