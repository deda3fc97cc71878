/** Fakes and the store conformance suite, for tests of the controller and of users' own backends. @module */
export { FakeCluster } from './fake-cluster.js';
export type { FakeClusterOptions } from './fake-cluster.js';
export { describeStore } from './store-suite.js';
export type { StoreFactory } from './store-suite.js';
export { RecordingDeployer } from './recording-deployer.js';
export { KEY_ED25519, KEY_ED25519_FP } from './store-suite.js';
