/**
 * Test helpers for discovery backends: the conformance suite every backend passes (run it on your
 * own backend inside a vitest file), a private etcd server you can stop and restart, and a child
 * process that owns a registration until it is killed.
 * @module
 */
export { describeDiscoveryConformance, EventReader } from './conformance.js';
export type { ConformanceTarget } from './conformance.js';
export { startEtcdServer } from './etcd-server.js';
export type { EtcdServer, EtcdServerOptions } from './etcd-server.js';
export { startOwnerProcess } from './owner.js';
export type { OwnerProcess } from './owner.js';
