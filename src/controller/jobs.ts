import type { FrameChannel } from '../common/http/frames.js';
import type { ArtifactType, Job, LogLine, Release, RunOutput } from './types.js';

/** A one-off job to run in an app's release. */
export interface OneOffJobSpec {
  appId: string;
  appName: string;
  release: Release;
  /** Slug URL of the release's artifact (a docker artifact: its image id), when it has one. */
  artifactUrl: string | null;
  /** The artifact's type. Default `slug`. */
  artifactType?: ArtifactType;
  /** A docker artifact's image archive, for a host whose engine lacks the image. */
  archiveUrl?: string;
  /** The slug's sha256, when its artifact records one (the host checks the slug against it). */
  artifactSha256?: string;
  cmd: string[];
  /** The release env plus the request's extra env. */
  env: Record<string, string>;
  /** Memory limit in bytes (`flynn run --size`). Default none. */
  memoryBytes?: number;
}

/** A started interactive one-off job: its frames (common/http/frames.ts) relayed from its host. */
export interface AttachedJob {
  id: string;
  /** Send `stdin`, `eof`, `resize`, `signal`; read `stdout`, `stderr`, then `exit` or `error`. */
  channel: FrameChannel;
  /** Stop the job at once (its client went away). */
  stop(): Promise<void>;
}

/** A started one-off job: its output in order, ending with the exit status. */
export interface RunningJob {
  id: string;
  output: AsyncIterable<RunOutput>;
}

export interface LogQuery {
  jobId?: string;
  type?: string;
  /** Keep the stream open for new lines. */
  follow?: boolean;
  /** Last N lines of history. Default all that is kept. */
  lines?: number;
  signal?: AbortSignal;
}

/**
 * What the controller needs from the grid (the scheduler and host agents): the jobs of an app as
 * the scheduler sees them across hosts, killing one, running a one-off command, and logs.
 * Declared here, implemented by an adapter over the scheduler/host clients; `FakeCluster` in
 * `testing/` is an in-process implementation.
 */
export interface JobRunner {
  /**
   * The app's jobs as the scheduler sees them. With `all`, also every ended job its hosts still
   * keep (state, exit status, end time), across restarts of the platform and of the hosts.
   */
  listJobs(appId: string, options?: { all?: boolean }): Promise<Job[]>;
  /**
   * The app's jobs (as `listJobs`) now, then again after each change to them, until `signal`
   * aborts: what a deploy and `flynn scale` wait on.
   */
  watchJobs(appId: string, options?: { signal?: AbortSignal }): AsyncIterable<Job[]>;
  /** Throws a NotFoundError when the app has no such job. */
  killJob(appId: string, jobId: string): Promise<void>;
  runJob(spec: OneOffJobSpec, options?: { signal?: AbortSignal }): Promise<RunningJob>;
  /**
   * Run a one-off job with its stdin open (`tty`: and a pseudo-terminal) and attach to it on its
   * host. Optional: a grid without it answers interactive runs with an error.
   */
  attachJob?(spec: OneOffJobSpec & { tty: boolean }, options?: { signal?: AbortSignal }): Promise<AttachedJob>;
  /**
   * Create a host volume named `name` on a host the grid picks (the one with the fewest jobs), or
   * find it where it already is; resolves with that host's id. Optional: a grid without volumes
   * cannot run the postgres appliance.
   */
  createVolume?(name: string): Promise<{ hostId: string }>;
  /** Rejects (NotFoundError) before any line when the job is unknown; the iterable ends on abort or, without `follow`, after the history. */
  logs(appId: string, query: LogQuery): Promise<AsyncIterable<LogLine>>;
}
