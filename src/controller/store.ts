import type {
  App,
  Artifact,
  ControllerEvent,
  CreateAppInput,
  CreateArtifactInput,
  DeployState,
  Deployment,
  Formation,
  Key,
  Release,
  UpdateAppInput,
} from './types.js';
import type {
  CreateRouteInput,
  HttpRoute,
  HttpRouteAcme,
  HttpRouteTls,
  Route,
  UpdateHttpRouteInput,
} from './route-types.js';

/** A formation change, as the scheduler's `FormationSource` adapter wants it. */
export type FormationChange = { type: 'put'; formation: Formation } | { type: 'delete'; appId: string; releaseId: string };

/** A route change, as the router's `RouteSource` adapter wants it. */
export type RouteChange = { type: 'put'; route: Route } | { type: 'delete'; id: string; appId: string };

export interface WatchOptions {
  signal?: AbortSignal;
}

/** Input of {@link Store.createRelease}, already validated and with process types resolved. */
export interface NewRelease {
  artifactId: string | null;
  env: Record<string, string>;
  processes: Release['processes'];
}

/**
 * One step of a deployment ({@link Store.stepDeployment}): the state it records and the writes
 * that go with it, all committed in one transaction.
 */
export interface DeployStep {
  state: DeployState;
  /** Formation writes: counts to put (zero-count types dropped), or null to delete the formation. One write per release. */
  formations?: Array<{ releaseId: string; processes: Record<string, number> | null }>;
  /** Switch the app's running release to this one. */
  appReleaseId?: string;
  /** Why the deployment failed (with `rolling-back` / `failed`). */
  error?: string;
}

/**
 * Everything the controller keeps. Every mutation is atomic and appends one {@link ControllerEvent}
 * in the same transaction, so the event log is the exact history of the store. App arguments take
 * an app id or name. Two backends: {@link MemoryStore} and {@link EtcdStore}; both pass
 * `describeStore` in `testing/`.
 */
export interface Store {
  createApp(input: CreateAppInput): Promise<App>;
  /** By id or name. Throws AppNotFoundError. */
  getApp(app: string): Promise<App>;
  listApps(): Promise<App[]>;
  updateApp(app: string, patch: UpdateAppInput): Promise<App>;
  /** Set the app's running release (done when a deployment completes). */
  setAppRelease(app: string, releaseId: string | null): Promise<App>;
  /** Replace the app's {@link App.scale} (counts are non-negative integers; zeros are kept). */
  setAppScale(app: string, scale: Record<string, number>): Promise<App>;
  /** Delete the app with its releases, formations, deployments and routes. */
  deleteApp(app: string): Promise<App>;

  createArtifact(input: CreateArtifactInput): Promise<Artifact>;
  getArtifact(id: string): Promise<Artifact>;
  listArtifacts(): Promise<Artifact[]>;

  /** Numbered v(n+1) for the app, atomically. */
  createRelease(app: string, input: NewRelease): Promise<Release>;
  /** By release id or version number (`3`, `v3`). */
  getRelease(app: string, release: string): Promise<Release>;
  /** Oldest first. */
  listReleases(app: string): Promise<Release[]>;

  /** Write the desired counts of one release of an app. Zero-count types are dropped. */
  putFormation(app: string, releaseId: string, processes: Record<string, number>): Promise<Formation>;
  getFormation(app: string, releaseId: string): Promise<Formation | undefined>;
  /** All formations, or one app's. */
  listFormations(app?: string): Promise<Formation[]>;
  deleteFormation(app: string, releaseId: string): Promise<void>;
  /** Formation changes after `afterEventId` (default: from now), live. */
  watchFormations(options?: WatchOptions & { afterEventId?: string }): AsyncIterable<FormationChange>;

  createDeployment(deployment: Omit<Deployment, 'id' | 'createdAt'>): Promise<Deployment>;
  /**
   * Record the next step of a deployment with its formation and release writes, atomically.
   * Throws ControllerConflictError for a step {@link DEPLOY_TRANSITIONS} does not allow from the
   * deployment's state. The status follows the state; `done`/`failed` set `finishedAt`.
   */
  stepDeployment(app: string, id: string, step: DeployStep): Promise<Deployment>;
  getDeployment(app: string, id: string): Promise<Deployment>;
  /** Newest first. */
  listDeployments(app: string): Promise<Deployment[]>;

  /** Throws ControllerConflictError when the domain+path (http) or port (tcp) is taken. */
  createRoute(app: string, input: CreateRouteInput): Promise<Route>;
  getRoute(app: string, id: string): Promise<Route>;
  /** All routes, or one app's. */
  listRoutes(app?: string): Promise<Route[]>;
  /** Change an HTTP route's service and options (`null` removes one); NotFound for a TCP route or none. */
  updateRoute(app: string, id: string, change: UpdateHttpRouteInput): Promise<Route>;
  deleteRoute(app: string, id: string): Promise<Route>;
  /**
   * Record the ACME client's progress on an HTTP route: its state, and the certificate it issued.
   * Does nothing (undefined) when the route is gone or no longer asks for ACME.
   */
  recordAcme(app: string, id: string, update: { acme: HttpRouteAcme; tls?: HttpRouteTls }): Promise<HttpRoute | undefined>;
  /** The cluster's ACME account key: `candidate` is stored if there is none yet, else the stored one is returned. */
  acmeAccountKey(candidate: string): Promise<string>;
  watchRoutes(options?: WatchOptions & { afterEventId?: string }): AsyncIterable<RouteChange>;

  /** The key line is parsed and fingerprinted; adding the same key twice is a conflict. */
  addKey(keyLine: string): Promise<Key>;
  listKeys(): Promise<Key[]>;
  /** By id or `SHA256:` fingerprint. */
  removeKey(idOrFingerprint: string): Promise<Key>;

  /** Record an event that has no stored object (e.g. a job state change). */
  appendEvent(event: Omit<ControllerEvent, 'id' | 'createdAt'>): Promise<ControllerEvent>;
  /** Events with id > afterId (all when omitted), oldest first, up to `limit`. */
  listEvents(options?: { afterId?: string; appId?: string; limit?: number }): Promise<ControllerEvent[]>;
  /** Replay events after `afterId` (none when omitted), then follow live ones. Ends on abort or close. */
  watchEvents(options?: WatchOptions & { afterId?: string }): AsyncIterable<ControllerEvent>;

  /**
   * Small state of the platform's components that must survive a restart (the scheduler's crash
   * backoff), by key; not part of the controller's API, nor of a backup. Entries under `prefix`, key order.
   */
  listState(prefix: string): Promise<Array<[string, string]>>;
  putState(key: string, value: string): Promise<void>;
  deleteState(key: string): Promise<void>;

  /** Every entry of the store but the components' state, key order, read at one point in time (what a backup keeps). */
  dumpEntries(): Promise<Array<[string, string]>>;
  /**
   * Put entries from {@link dumpEntries} back into this store, which must hold no app (a restore is
   * into a fresh cluster). Written in batches, apps last: an interrupted restore shows no app and
   * can be run again.
   */
  restoreEntries(entries: Array<[string, string]>): Promise<void>;

  close(): Promise<void>;
}
