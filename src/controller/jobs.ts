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
  cmd: string[];
  /** The release env plus the request's extra env. */
  env: Record<string, string>;
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
  listJobs(appId: string): Promise<Job[]>;
  /** Throws a NotFoundError when the app has no such job. */
  killJob(appId: string, jobId: string): Promise<void>;
  runJob(spec: OneOffJobSpec, options?: { signal?: AbortSignal }): Promise<RunningJob>;
  /** Rejects (NotFoundError) before any line when the job is unknown; the iterable ends on abort or, without `follow`, after the history. */
  logs(appId: string, query: LogQuery): Promise<AsyncIterable<LogLine>>;
}
