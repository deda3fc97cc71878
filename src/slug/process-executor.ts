import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { caBundleEnv } from '../common/ca-bundle.js';
import type { BuildExecutor, BuildJob, BuildJobResult, BuildMount } from './executor.js';
import { LineSplitter } from './executor.js';

export const PROCESS_EXECUTOR_DEFAULTS = Object.freeze({
  /** The host's CA bundle, given to node through `NODE_EXTRA_CA_CERTS` (node ignores the system store). */
  caBundle: '/etc/ssl/certs/ca-certificates.crt',
  /** `$STACK` of builds run on the host itself. */
  stack: 'host',
});

export interface ProcessBuildExecutorOptions {
  /** `PATH` for the build; it must hold `sh`, the usual POSIX tools and `node`. Default: this process's PATH. */
  path?: string;
  /** CA bundle the build's TLS clients trust (skipped when missing); `null` for none. Default {@link PROCESS_EXECUTOR_DEFAULTS}.caBundle. */
  caBundle?: string | null;
  /** Extra environment of every build (e.g. `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY`); the job's own env wins. */
  env?: Record<string, string>;
  /**
   * Tell buildpacks there is no network (`FLYNN_NPM_OFFLINE=1`): a process cannot be cut off the
   * host's network, so this only makes npm fail at once instead of trying. Default false.
   */
  offline?: boolean;
  /** Default {@link PROCESS_EXECUTOR_DEFAULTS}.stack. */
  stack?: string;
}

/**
 * Runs the build as a plain child process on this host, for machines without Docker. There are no
 * mount namespaces, so each mount `path` at the start of an argument or env value is rewritten to
 * its `hostPath`. The timeout and abort kill the whole process group. Memory limits are NOT
 * enforced (a process has no cgroup of its own here); use the Docker executor where that matters.
 */
export class ProcessBuildExecutor implements BuildExecutor {
  readonly name = 'process';
  readonly offline: boolean;
  readonly stack: string;
  private readonly path: string;
  private readonly env: Record<string, string>;

  constructor(options: ProcessBuildExecutorOptions = {}) {
    this.path = options.path ?? process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin';
    this.offline = options.offline ?? false;
    this.stack = options.stack ?? PROCESS_EXECUTOR_DEFAULTS.stack;
    const ca = options.caBundle === undefined ? PROCESS_EXECUTOR_DEFAULTS.caBundle : options.caBundle;
    this.env = { ...(ca !== null && existsSync(ca) ? caBundleEnv(ca) : {}), ...options.env };
  }

  run(job: BuildJob): Promise<BuildJobResult> {
    const map = (value: string) => hostPathOf(value, job.mounts);
    const [cmd, ...args] = job.argv.map(map);
    const env: Record<string, string> = { PATH: this.path, ...this.env };
    for (const [k, v] of Object.entries(job.env)) env[k] = map(v);
    return new Promise((resolve) => {
      const child = spawn(cmd!, args, { env, cwd: job.workDir ? map(job.workDir) : undefined, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      const lines = new LineSplitter(job.onLine);
      child.stdout.on('data', (d: Buffer) => lines.push(d));
      child.stderr.on('data', (d: Buffer) => lines.push(d));
      let timedOut = false;
      let aborted = false;
      const kill = () => {
        try {
          if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      };
      const timer = setTimeout(() => {
        timedOut = true;
        kill();
      }, job.timeoutMs);
      const onAbort = () => {
        aborted = true;
        kill();
      };
      job.signal?.addEventListener('abort', onAbort, { once: true });
      if (job.signal?.aborted) onAbort();
      const finish = (exitCode: number) => {
        clearTimeout(timer);
        job.signal?.removeEventListener('abort', onAbort);
        lines.flush();
        resolve({ exitCode, timedOut, aborted });
      };
      child.once('error', (err) => {
        job.onLine(` !     cannot start ${cmd}: ${err.message}`);
        finish(127);
      });
      child.once('close', (code) => finish(code ?? -1));
    });
  }
}

function hostPathOf(value: string, mounts: BuildMount[]): string {
  // Longest mount path first, so /flynn/a/b wins over /flynn/a.
  for (const m of [...mounts].sort((a, b) => b.path.length - a.path.length)) {
    if (value === m.path || value.startsWith(`${m.path}/`)) return m.hostPath + value.slice(m.path.length);
  }
  return value;
}
