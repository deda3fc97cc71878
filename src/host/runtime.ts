import type { BoundPort, ExitStatus, JobSpec, LogLine } from './types.js';

/** What the agent hands a runtime to start: the job with its final env and its bound host ports. */
export interface RuntimeJobSpec {
  /** The agent that owns the job; recorded with the job so `list(hostId)` finds it again. */
  hostId: string;
  /** The address host ports are bound on (the agent's advertised loopback address). */
  bindAddr: string;
  /** The job; `env` is complete (the agent already added PORT, FLYNN_* and HOSTNAME). */
  job: JobSpec;
  /** One bound port per `job.ports` entry, same order. */
  ports: BoundPort[];
  /**
   * Where the agent stored `job.artifact` on the host. The runtime hands it to the job read-only and
   * sets `SLUG_URL` to it (Docker: mounted at {@link ARTIFACT_MOUNT_PATH}; process: `file://<path>`).
   */
  artifactPath?: string;
  /** The host paths of `job.volumes`, same order (see {@link Runtime.mountsVolumes}). */
  mounts?: { source: string; target: string; readOnly?: boolean }[];
}

/** Makes images present on one engine (host/image-archive.ts has the Docker one). */
export interface ImageLoader {
  /**
   * Make `image` (a pinned `sha256:` id) present on the engine, loading the archive at `url` when
   * it lacks it. Concurrent calls for one image share one load. Resolves with what was done.
   */
  ensure(image: string, url: string, options?: { signal?: AbortSignal }): Promise<'present' | 'loaded'>;
}

/** Where a Docker job finds its artifact. */
export const ARTIFACT_MOUNT_PATH = '/flynn/slug.tgz';

/** A job as the runtime sees it. */
export interface RuntimeJob {
  spec: RuntimeJobSpec;
  running: boolean;
  /** Set once the job has ended. */
  exit?: ExitStatus;
  /** ISO timestamp the job was started. */
  startedAt: string;
}

/** A job of `hostId` ended. An OOM kill has `exit.reason === 'oom'`. */
export interface RuntimeExitEvent {
  type: 'exit';
  hostId: string;
  jobId: string;
  exit: ExitStatus;
}

export type RuntimeEvent = RuntimeExitEvent;

export interface LogOptions {
  /** Keep streaming new lines until the job ends or the signal aborts. */
  follow?: boolean;
  /** Start with only the last N lines; all when absent. */
  tail?: number;
  signal?: AbortSignal;
}

/** A chunk of a job's raw output. */
export interface OutputChunk {
  /** With a tty everything is `stdout`. */
  stream: 'stdout' | 'stderr';
  data: Buffer;
}

/** The stdin (and maybe raw output) of a job started with `stdin` (see `JobSpec.stdin`). */
export interface JobStdio {
  /**
   * The job's raw output from its start (kept until read) to its end. Absent when the runtime has
   * only its line logs (the agent follows those instead).
   */
  output?: AsyncIterable<OutputChunk>;
  write(data: Buffer): void;
  /** Close the job's stdin (EOF). */
  end(): void;
  /** Set the size of the job's terminal; a no-op without one. */
  resize(cols: number, rows: number): Promise<void>;
}

export interface StopOptions {
  /** Time between SIGTERM and SIGKILL, in ms. */
  graceMs: number;
}

/**
 * The seam between the host agent and what runs jobs: Docker containers or child processes.
 * Speaks flynn-ts types only. One runtime may serve several agents (several host ids).
 */
export interface Runtime {
  /** `docker` or `process`. */
  readonly name: string;
  /**
   * True when the runtime maps host ports to the job's own ports (Docker). False when the job
   * binds its host port itself (processes): the agent then sets `PORT` to the host port.
   */
  readonly mapsPorts: boolean;
  /** Whether it can mount host volumes into jobs (`JobSpec.volumes`); the agent refuses such jobs otherwise. */
  readonly mountsVolumes?: boolean;
  /** Loads images the engine lacks (a Dockerfile app's archive): Docker only. */
  readonly images?: ImageLoader;
  /**
   * Whether the running job itself listens on its own `port` where a published port reaches it (not
   * on loopback only); undefined when the runtime cannot tell. Docker's port proxy accepts
   * connections whatever the container does, so a probe of the host port alone can be fooled on a
   * loaded machine; the agent asks this first.
   */
  listening?(hostId: string, jobId: string, port: number): Promise<boolean | undefined>;
  /** Create and start the job. Throws a FlynnError when it cannot start (nothing is left behind). */
  start(spec: RuntimeJobSpec): Promise<RuntimeJob>;
  /** SIGTERM, then SIGKILL after `graceMs`. Resolves once the job has ended. No-op for an ended job. */
  stop(hostId: string, jobId: string, options: StopOptions): Promise<void>;
  /** Send a signal (e.g. `SIGHUP`) to the job's process (group). */
  signal(hostId: string, jobId: string, signal: string): Promise<void>;
  /** The job, or undefined if this runtime has no job with that id for that host. */
  inspect(hostId: string, jobId: string): Promise<RuntimeJob | undefined>;
  /** Every job of `hostId` the runtime knows, running or ended (until removed). */
  list(hostId: string): Promise<RuntimeJob[]>;
  /**
   * Find the jobs a previous agent of `hostId` left running and watch them again, so their exits
   * are reported. Returns everything `list(hostId)` returns.
   */
  recover(hostId: string): Promise<RuntimeJob[]>;
  /** Forget an ended job and delete what it left (container, log files). */
  remove(hostId: string, jobId: string): Promise<void>;
  /**
   * The stdio of a running job started with `stdin`, once per job (an agent attaches it once);
   * undefined when there is none (not started with `stdin`, taken already, or lost with a restart).
   */
  takeStdio(hostId: string, jobId: string): JobStdio | undefined;
  /** The job's output; ends when the job ends (follow) or after the existing lines. */
  logs(hostId: string, jobId: string, options?: LogOptions): AsyncIterable<LogLine>;
  /** Exit events of all jobs started or recovered by this runtime. Ends on `close()`. */
  events(options?: { signal?: AbortSignal }): AsyncIterable<RuntimeEvent>;
  /** Stop watching. Jobs keep running (a new agent recovers them), except process jobs with stdin, which are killed. */
  close(): Promise<void>;
}

/** Turn a signal name or number into the number the kernel uses, or undefined. */
export function signalNumber(name: string): number | undefined {
  const known: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGUSR1: 10, SIGUSR2: 12, SIGTERM: 15, SIGCONT: 18, SIGSTOP: 19, SIGWINCH: 28 };
  return known[name];
}

/** Signal names accepted by `signal()` and the API. */
export const ALLOWED_SIGNALS: readonly string[] = ['SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGKILL', 'SIGUSR1', 'SIGUSR2', 'SIGTERM', 'SIGCONT', 'SIGSTOP', 'SIGWINCH'];
