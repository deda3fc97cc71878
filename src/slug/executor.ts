/**
 * The one seam the slug builder needs from a runtime: run one command to completion in the build
 * environment and stream its output. Declared here, by its user; `DockerBuildExecutor` and
 * `ProcessBuildExecutor` implement it.
 */

/** A host directory made visible to the command at `path`. */
export interface BuildMount {
  hostPath: string;
  /** Where the command sees it. */
  path: string;
  readOnly?: boolean;
}

export interface BuildJob {
  /** The command, with paths as the command sees them (mount `path`s). */
  argv: string[];
  /** Environment; values may name mount paths. */
  env: Record<string, string>;
  mounts: BuildMount[];
  /** Working directory (a mount path). */
  workDir?: string;
  /** Memory limit in bytes. */
  memoryBytes: number;
  /** Kill the command after this many milliseconds. */
  timeoutMs: number;
  /** Kill the command when aborted. */
  signal?: AbortSignal;
  /** Each line of output (stdout and stderr interleaved), without its newline. */
  onLine: (line: string) => void;
}

export interface BuildJobResult {
  /** The command's exit status; -1 when it was killed. */
  exitCode: number;
  timedOut: boolean;
  aborted: boolean;
  /** The command was killed for going past its memory limit (when the executor can tell). */
  oomKilled?: boolean;
}

/** What is known of a build job before its source has arrived: enough to start its environment. */
export interface BuildJobSetup {
  mounts: BuildMount[];
  /** Memory limit in bytes. */
  memoryBytes: number;
}

/**
 * A build environment started ahead of its job (e.g. while the source is still being pushed),
 * for exactly one job: it is never reused, and it is torn down after that job or on `discard`.
 */
export interface PreparedBuildJob {
  /**
   * Run the job in the prepared environment. A job whose mounts or memory limit differ from the
   * setup's runs as {@link BuildExecutor.run} would, and the prepared environment is discarded.
   */
  run(job: BuildJob): Promise<BuildJobResult>;
  /** Tear the environment down unused. Idempotent; a no-op once `run` was called. */
  discard(): Promise<void>;
}

export interface BuildExecutor {
  /** `docker` or `process`, for messages. */
  readonly name: string;
  /** Its builds have no network (Docker network `none`): the builder then tells buildpacks so (`FLYNN_NPM_OFFLINE=1`). Default false. */
  readonly offline?: boolean;
  /** The stack its builds run on, given to them as `$STACK`; unset leaves `$STACK` to the image. */
  readonly stack?: string;
  /**
   * The user jobs run as when it is not this process's (Docker builds run as `app`, uid 1000):
   * the builder hands the build's scratch directory to it before the job runs.
   */
  readonly runsAs?: { uid: number; gid: number };
  run(job: BuildJob): Promise<BuildJobResult>;
  /**
   * Start the environment of a job ahead of time (optional: an executor whose environments cost
   * nothing to start leaves it out). Must not throw: a preparation that fails makes `run` fall
   * back to a fresh start, which reports the failure.
   */
  prepare?(setup: BuildJobSetup): PreparedBuildJob;
}

/** Whether a job's mounts and memory limit are those a setup prepared. */
export function matchesSetup(job: BuildJob, setup: BuildJobSetup): boolean {
  if (job.memoryBytes !== setup.memoryBytes || job.mounts.length !== setup.mounts.length) return false;
  const key = (m: BuildMount) => `${m.hostPath}\0${m.path}\0${m.readOnly === true}`;
  const want = new Set(setup.mounts.map(key));
  return job.mounts.every((m) => want.has(key(m)));
}

/** Turns chunks into lines (LF or CRLF), holding a partial last line until more comes or `flush`. */
export class LineSplitter {
  private rest = '';
  constructor(private readonly onLine: (line: string) => void) {}

  push(chunk: Buffer | string): void {
    const text = this.rest + chunk.toString();
    const lines = text.split('\n');
    this.rest = lines.pop() ?? '';
    for (const line of lines) this.onLine(line.replace(/\r$/, ''));
  }

  flush(): void {
    if (this.rest !== '') this.onLine(this.rest.replace(/\r$/, ''));
    this.rest = '';
  }
}
