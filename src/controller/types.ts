/** Wire and domain types of the controller. Imports nothing else from the project. */

/** How a deployment moves an app from one release to another. */
export type DeploymentStrategy = 'all-at-once' | 'one-by-one';

export interface App {
  id: string;
  /** Lowercase DNS label, unique in the cluster. */
  name: string;
  meta: Record<string, string>;
  /** The release that is running (the last deployment that completed), or null. */
  releaseId: string | null;
  strategy: DeploymentStrategy;
  /**
   * The count of each process type the app is scaled to, kept across releases (Heroku's app
   * formation): set by `scale` of the running release and by a deploy (`web: 1` on the first
   * release with a `web` type, when web was never scaled). A count of 0 is kept: web scaled to 0
   * stays 0. A type the running release lacks keeps its count here without running, so a later
   * release that has the type runs it at that count again. Absent on apps stored by a version
   * that did not keep it: their running formation stands in.
   */
  scale?: Record<string, number>;
  createdAt: string;
  updatedAt: string;
}

/** One process type of a release: the command a job of that type runs. */
export interface ProcessType {
  cmd: string[];
  /** Ports the process listens on (the first is `PORT`). */
  ports?: number[];
  /**
   * Host volumes its jobs mount (the host's `JobSpec.volumes`). A volume lives on one host: with
   * volumes, `host` must name it, and the scheduler places the jobs there only. Platform apps only
   * (the postgres appliance); the API does not take it.
   */
  volumes?: { name: string; target: string }[];
  /** The host its jobs are pinned to (where their volumes are). */
  host?: string;
  /** A name other jobs reach its jobs by (the host's `JobSpec.alias`, e.g. `postgres-<id>.flynn`). */
  alias?: string;
}

/**
 * Something runnable: a slug tarball in the blobstore with the process types its Procfile declares
 * (`slug`, `url` its shelf URL), or an image built from the app's Dockerfile (`docker`, `url` the
 * image id `sha256:...` in the hosts' Docker engine).
 */
export interface Artifact {
  id: string;
  type: ArtifactType;
  url: string;
  /**
   * A docker artifact's image as a `docker save` archive in shelf: hosts whose engine lacks the
   * image load it from there (docs/buildpacks.md). Absent when the hosts share the building engine.
   */
  archiveUrl?: string;
  /**
   * A slug's sha256 (64 lowercase hex digits), recorded by the builder: a host checks the slug it
   * downloads against it and refuses a damaged one. Absent on artifacts created without it.
   */
  sha256?: string;
  processes: Record<string, ProcessType>;
  createdAt: string;
}

/** Immutable: an artifact + env + process types, numbered per app (v1, v2, ...). */
export interface Release {
  id: string;
  appId: string;
  version: number;
  artifactId: string | null;
  env: Record<string, string>;
  processes: Record<string, ProcessType>;
  createdAt: string;
}

/** Desired state read by the scheduler: how many jobs of each process type of one release. */
export interface Formation {
  appId: string;
  releaseId: string;
  processes: Record<string, number>;
  updatedAt: string;
}

/** A deployment's coarse status, derived from its {@link DeployState} ({@link DEPLOY_STATE_STATUS}). */
export type DeploymentStatus = 'pending' | 'running' | 'complete' | 'failed';

/**
 * The recorded steps of a deployment (docs/deploy.md). Each step is committed in one store
 * transaction together with the formation and release writes it stands for, before anything acts
 * on them, so a controller that restarts finds every deployment at a step it can finish or undo:
 * - `pending`: recorded, nothing written yet (the old release's counts are in `oldProcesses`).
 * - `starting-new`: the new release's formation written (one-by-one: one more new job, or one old
 *   job less, per step); the old release keeps serving. Undone on a restart.
 * - `new-up`: the new release's jobs were up; the app's release switched to it. Finished on a restart.
 * - `stopping-old`: the old release's formation removed.
 * - `rolling-back`: the new formation removed and the old one restored at its counts.
 * - `done` / `failed`: terminal.
 */
export type DeployState = 'pending' | 'starting-new' | 'new-up' | 'stopping-old' | 'done' | 'rolling-back' | 'failed';

/** The allowed deployment steps, in one place: from each state, the states the next step may record. */
export const DEPLOY_TRANSITIONS: Readonly<Record<DeployState, readonly DeployState[]>> = Object.freeze({
  pending: ['starting-new', 'new-up', 'rolling-back'],
  'starting-new': ['starting-new', 'new-up', 'rolling-back'],
  'new-up': ['stopping-old'],
  'stopping-old': ['done'],
  'rolling-back': ['failed'],
  done: [],
  failed: [],
});

/** The status each state shows. */
export const DEPLOY_STATE_STATUS: Readonly<Record<DeployState, DeploymentStatus>> = Object.freeze({
  pending: 'pending',
  'starting-new': 'running',
  'new-up': 'running',
  'stopping-old': 'running',
  'rolling-back': 'running',
  done: 'complete',
  failed: 'failed',
});

/** A deployment's state; one stored before states were recorded has its status mapped (a running one counts as `starting-new`). */
export function deployStateOf(d: Pick<Deployment, 'state' | 'status'>): DeployState {
  return d.state ?? ({ pending: 'pending', running: 'starting-new', complete: 'done', failed: 'failed' } as const)[d.status];
}

export interface Deployment {
  id: string;
  appId: string;
  oldReleaseId: string | null;
  newReleaseId: string;
  strategy: DeploymentStrategy;
  status: DeploymentStatus;
  /** The last step committed. Absent on deployments stored by a version that did not record steps (their `status` stands in). */
  state?: DeployState;
  /** Process counts the new release is brought to. */
  processes: Record<string, number>;
  /** The counts the old release ran at when the deployment began (restored by a rollback); null when nothing ran. */
  oldProcesses?: Record<string, number> | null;
  /**
   * True when this deployment starts the app's first web process: the release has a `web` type and
   * the app's web was never scaled, so it runs `web=1` (scale.ts) and the app should get its default
   * route (the git receiver adds it). Absent otherwise.
   */
  firstWeb?: true;
  error?: string;
  createdAt: string;
  finishedAt?: string;
}

/** An SSH public key allowed to push. */
export interface Key {
  /** Hex SHA-256 of the key blob (stable, URL-safe). */
  id: string;
  /** `SHA256:<base64>` as `ssh-keygen -lf` prints it. */
  fingerprint: string;
  /** The key line as `<type> <base64> [comment]`. */
  key: string;
  comment: string;
  createdAt: string;
}

export type EventObject = 'app' | 'artifact' | 'release' | 'formation' | 'deployment' | 'route' | 'key' | 'job';
export type EventOp = 'create' | 'update' | 'delete';

/** One change, in order. `id` is a decimal sequence number, strictly increasing. */
export interface ControllerEvent {
  id: string;
  object: EventObject;
  op: EventOp;
  appId: string | null;
  objectId: string;
  data: unknown;
  createdAt: string;
}

export type JobState = 'starting' | 'up' | 'down' | 'crashed' | 'failed';

/** A job as the scheduler sees it, on any host. */
export interface Job {
  id: string;
  appId: string;
  releaseId: string;
  type: string;
  state: JobState;
  hostId?: string;
  cmd?: string[];
  createdAt: string;
  /** A job that ended (listed with `all`): when, as its host recorded it. */
  endedAt?: string;
  /** A job that ended: its exit code (128+N when killed by signal N) and why (`exit`, `oom`, `killed`). */
  exit?: { code: number; reason: string };
  /** A job that failed to start (listed with `all`): why, in one line, as its host recorded it (e.g. a damaged slug). */
  error?: string;
}

export interface LogLine {
  jobId: string;
  type: string;
  stream: 'stdout' | 'stderr';
  msg: string;
  time: string;
}

/** Output of an attached one-off job. */
export type RunOutput = { kind: 'output'; stream: 'stdout' | 'stderr'; data: string } | { kind: 'exit'; status: number };

// ---- request bodies ----

export interface CreateAppInput {
  name: string;
  meta?: Record<string, string>;
  strategy?: DeploymentStrategy;
}

export interface UpdateAppInput {
  meta?: Record<string, string>;
  strategy?: DeploymentStrategy;
}

export type ArtifactType = 'slug' | 'docker';

export interface CreateArtifactInput {
  /** Default `slug`. */
  type?: ArtifactType;
  url: string;
  /** A docker artifact's `docker save` archive (see {@link Artifact.archiveUrl}). */
  archiveUrl?: string;
  /** A slug's sha256 (see {@link Artifact.sha256}). */
  sha256?: string;
  processes?: Record<string, ProcessType>;
}

export interface CreateReleaseInput {
  artifactId?: string | null;
  env?: Record<string, string>;
  /** Defaults to the artifact's process types. */
  processes?: Record<string, ProcessType>;
}

export interface RunJobInput {
  cmd: string[];
  env?: Record<string, string>;
  /** Memory limit of the job in MB (`flynn run --size`). Default none. */
  memoryMb?: number;
  /** Stream output and exit status back (SSE). */
  attach?: boolean;
}

/**
 * What an interactive run (`GET /apps/:app/run`, upgraded) sends in its first `start` frame: the
 * job gets its stdin, and with `tty` a pseudo-terminal.
 */
export interface AttachRunInput extends Omit<RunJobInput, 'attach'> {
  tty?: boolean;
}

/** `POST /apps/:app/deploy-git`: build and deploy the app from a git URL, as a push would (Taffy). */
export interface DeployGitInput {
  /** https://, http://, git://, ssh:// (or `user@host:path`), and file:// where the cluster allows it. */
  url: string;
  /** Branch, tag or commit. Default: the repository's default branch. */
  ref?: string;
}

/** What a deploy-triggering change (env set, rollback, deploy) answers. */
export interface ReleaseChange {
  release: Release;
  deployment: Deployment;
}

/** What a rollback answers: the new release (a copy of `target`) and its deployment. */
export interface RollbackChange extends ReleaseChange {
  /** The earlier release whose artifact, env and processes the new release copies. */
  target: Release;
}

/**
 * What an env change answers: the new release and its deployment; or, for a change that changes
 * nothing (unset of a variable that is not set, set to the value it has), no new release —
 * `deployment` is null and `release` is the current one (null when the app has none).
 * `unchanged` names the keys of the request that had no effect.
 */
export type EnvChange = (ReleaseChange & { unchanged: string[] }) | { release: Release | null; deployment: null; unchanged: string[] };

/**
 * A resource an app got from a provider (Flynn's providers/resources, Heroku's add-ons): e.g. a
 * PostgreSQL database and role on the platform's postgres appliance, whose URL the app has in its
 * env (`DATABASE_URL`).
 */
export interface Resource {
  id: string;
  /** The provider's name, e.g. `postgres`. */
  provider: string;
  appId: string;
  appName: string;
  /** Config vars the resource set on the app. */
  envVars: string[];
  /** What the provider made, e.g. `{ database: 'db_...', role: 'db_...' }`. */
  meta: Record<string, string>;
  createdAt: string;
}

/** `POST /providers/:provider/resources`: the resource and the app release that got its env. */
export type ResourceChange = { resource: Resource } & (ReleaseChange | { release: null; deployment: null });
