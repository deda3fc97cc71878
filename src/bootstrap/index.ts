/**
 * Bootstrap: the composition layer. Starts a whole cluster in one process (`startCluster`,
 * `createTestCluster`), layer 1 onto a running layer 0 (`startPlatform`, or `bootstrap` from a
 * JSON/YAML manifest: `loadManifest`), and provides the adapters that wire the modules together: the controller's
 * store as the scheduler's formation source and the router's route source, the controller's job
 * runner over the scheduler and host agents.
 *
 * ```ts
 * import { startCluster } from 'flynn-ts/bootstrap';
 * await using cluster = await startCluster({ runtime: 'process' });
 * await cluster.client.createApp({ name: 'hello' });
 * // git push ssh://git@<cluster.gitHost>/hello.git main → http://hello.flynn.local:8080
 * ```
 * @module
 */
export { startCluster, CLUSTER_DEFAULTS } from './cluster.js';
export type { Cluster, ClusterOptions } from './cluster.js';
export { startPlatform, PLATFORM_DEFAULTS, BUILD_NETWORKS, serverAddArgs } from './platform.js';
export type { Platform, PlatformOptions, ClusterRuntime, BuildNetwork, BootstrapStep, RuntimeChoice, PlatformAccessLogOptions } from './platform.js';
export { createTestCluster, TEST_CLUSTER_DEFAULTS } from './test-cluster.js';
export type { TestCluster, TestClusterOptions } from './test-cluster.js';
export { webService } from '../controller/default-route.js';
export { StoreRouteSource, toRouterRoute } from './route-source.js';
// The controller ↔ scheduler seam lives in src/grid/ (`flynn-ts/grid`); kept here for existing imports.
export { SchedulerJobRunner, SCHEDULER_JOB_RUNNER_DEFAULTS, StoreFormationSource, STORE_FORMATION_DEFAULTS, toSchedulerFormation } from '../grid/index.js';
export type { SchedulerJobRunnerOptions, StoreFormationSourceOptions } from '../grid/index.js';
// The git receiver's platform lives in src/receiver/ (it talks to the controller only over its API); kept here for existing imports.
export { ControllerGitPlatform, CONTROLLER_GIT_PLATFORM_DEFAULTS, DEPLOY_TRACE_CHANNEL, appUrl } from '../receiver/index.js';
export type { ControllerGitPlatformOptions } from '../receiver/index.js';
export { bootstrap, BOOTSTRAP_DEFAULTS } from './bootstrap.js';
export type { BootstrapHandle, BootstrapOptions } from './bootstrap.js';
export { parseManifest, loadManifest, validateManifest } from './manifest.js';
export type { BootstrapManifest, ManifestDiscovery, ManifestStore, ManifestFormat, ManifestOptions, ValidateManifestOptions } from './manifest.js';
export { BootstrapErrorCodes, BootstrapInputError, BootstrapManifestError, BootstrapPortInUseError, BootstrapStateFileError, BootstrapDataDirInUseError } from './errors.js';
export type { ManifestProblem, ListeningComponent } from './errors.js';
