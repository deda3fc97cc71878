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

export interface BuildExecutor {
  /** `docker` or `process`, for messages. */
  readonly name: string;
  run(job: BuildJob): Promise<BuildJobResult>;
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
