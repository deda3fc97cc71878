/**
 * The controller (flynn-controller): the HTTP API that manages apps, artifacts, releases,
 * formations, deployments, jobs, routes, keys, logs and an event stream; its {@link Store}
 * backends (sqlite, etcd, memory; `createStore`) and the typed {@link ControllerClient}.
 *
 * ```ts
 * import { startController, ControllerClient, EtcdStore } from 'flynn-ts/controller';
 * const controller = await startController({ key: 'secret', store: new EtcdStore(), jobs: myJobRunner });
 * const client = new ControllerClient({ url: controller.url, key: 'secret' });
 * await client.createApp({ name: 'web' });
 * ```
 * @module
 */
export { startController, CONTROLLER_DEFAULTS } from './server.js';
export type { ControllerOptions, ControllerHandle } from './server.js';
export { ControllerClient } from './client.js';
export type { ControllerClientOptions, WaitOptions } from './client.js';
export type { Store, DeployStep, FormationChange, RouteChange, NewRelease, WatchOptions } from './store.js';
export type { Kv, KvTxn } from './kv.js';
export { KvStore, KV_STORE_DEFAULTS } from './kv-store.js';
export type { KvStoreOptions } from './kv-store.js';
export { MemoryStore, MemoryKv } from './memory-store.js';
export { EtcdStore, EtcdKv, ETCD_STORE_DEFAULTS } from './etcd-store.js';
export type { EtcdStoreOptions } from './etcd-store.js';
export { SqliteStore, SqliteKv, SQLITE_STORE_DEFAULTS } from './sqlite-store.js';
export type { SqliteStoreOptions } from './sqlite-store.js';
export { createStore } from './create.js';
export type { StoreConfig } from './create.js';
export type { JobRunner, OneOffJobSpec, RunningJob, AttachedJob, LogQuery } from './jobs.js';
export type { RunOptions, RunSession, RunChunk } from './run-session.js';
export type { GitSourceDeployer } from './api/deploy-git.js';
export { FormationDeployer, FORMATION_DEPLOYER_DEFAULTS } from './deployer.js';
export { DEPLOYER_TRACE_CHANNEL } from './deployer-trace.js';
export type { Deployer, DeployPlan, DeployOptions, FormationDeployerOptions } from './deployer.js';
export {
  ControllerErrorCodes,
  ControllerInputError,
  AppNotFoundError,
  ObjectNotFoundError,
  AmbiguousJobError,
  NameTakenError,
  ControllerConflictError,
  DeployInProgressError,
  DeployFailedError,
  ScaleFailedError,
  ScaleTimeoutError,
  StoreUnavailableError,
  ProcessTypeNotFoundError,
} from './errors.js';
export type { ProcessTypeNotFoundDetail } from './errors.js';
export { validateAppName, parsePublicKey, reservedEnvReason, RESERVED_ENV, RESERVED_ENV_PREFIX } from './validate.js';
export { resolveJobId, JOB_PREFIX_MIN } from './job-ref.js';
export { webService } from './default-route.js';
export type { ParsedKey } from './validate.js';
export { DEPLOY_TRANSITIONS, DEPLOY_STATE_STATUS, deployStateOf } from './types.js';
export type {
  App,
  Artifact,
  ControllerEvent,
  CreateAppInput,
  CreateArtifactInput,
  CreateReleaseInput,
  DeployGitInput,
  Deployment,
  DeploymentStatus,
  DeployState,
  DeploymentStrategy,
  EventObject,
  EventOp,
  Formation,
  Job,
  JobState,
  Key,
  LogLine,
  ProcessType,
  Release,
  ReleaseChange,
  RollbackChange,
  EnvChange,
  RunJobInput,
  AttachRunInput,
  RunOutput,
  UpdateAppInput,
  Resource,
  ResourceChange,
} from './types.js';
export type {
  CreateRouteInput,
  CreateHttpRouteInput,
  CreateTcpRouteInput,
  HttpRoute,
  HttpRouteHealthCheck,
  HttpRouteOptions,
  HttpRouteTimeouts,
  HttpRouteTls,
  HttpRouteTlsView,
  RouteView,
  UpdateHttpRouteInput,
  Route,
  TcpRoute,
} from './route-types.js';
export { ResourceErrorCodes, ProviderNotFoundError, ResourceExistsError, ResourceNotFoundError } from './resource-errors.js';
export { POSTGRES_PROVIDER_DEFAULTS, POSTGRES_IMAGE_PACKAGES } from './postgres-provider.js';
