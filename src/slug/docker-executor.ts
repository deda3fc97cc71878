import { PassThrough } from 'node:stream';
import Dockerode from 'dockerode';
import { SlugErrorCodes, BuildFailedError } from './errors.js';
import type { BuildExecutor, BuildJob, BuildJobResult } from './executor.js';
import { LineSplitter } from './executor.js';
import { traceSlug } from './trace.js';

export const DOCKER_EXECUTOR_DEFAULTS = Object.freeze({
  /** The runtime image (`ensureRuntimeImage` builds it): node + busybox. */
  image: 'flynn-ts/runtime:latest',
  /** Builds get no network: the bundled buildpacks need none. */
  network: 'none',
});

export interface DockerBuildExecutorOptions {
  /** Docker client. Default `new Dockerode()`. */
  docker?: Dockerode;
  /** Image the build runs in. Default {@link DOCKER_EXECUTOR_DEFAULTS}.image. */
  image?: string;
  /** Docker network mode: `none` (default) or e.g. `bridge` for buildpacks that fetch things. */
  network?: string;
  /** Extra labels on every build container (tests add their own to clean up). */
  labels?: Record<string, string>;
}

/**
 * Runs the build in a container of the runtime image: labelled `io.flynn-ts=1`,
 * `io.flynn-ts.role=build`, with the job's mounts as bind mounts, its memory limit (swap
 * included), no network by default, and removed when done, whatever happened.
 */
export class DockerBuildExecutor implements BuildExecutor {
  readonly name = 'docker';
  private readonly docker: Dockerode;
  private readonly image: string;
  private readonly network: string;
  private readonly labels: Record<string, string>;

  constructor(options: DockerBuildExecutorOptions = {}) {
    this.docker = options.docker ?? new Dockerode();
    this.image = options.image ?? DOCKER_EXECUTOR_DEFAULTS.image;
    this.network = options.network ?? DOCKER_EXECUTOR_DEFAULTS.network;
    this.labels = { ...options.labels, 'io.flynn-ts': '1', 'io.flynn-ts.role': 'build' };
  }

  async run(job: BuildJob): Promise<BuildJobResult> {
    let container: Dockerode.Container;
    try {
      container = await this.docker.createContainer({
        Image: this.image,
        Cmd: job.argv,
        Env: Object.entries(job.env).map(([k, v]) => `${k}=${v}`),
        WorkingDir: job.workDir,
        Labels: this.labels,
        AttachStdout: true,
        AttachStderr: true,
        Tty: false,
        HostConfig: {
          Binds: job.mounts.map((m) => `${m.hostPath}:${m.path}:${m.readOnly ? 'ro' : 'rw'}`),
          Memory: job.memoryBytes,
          MemorySwap: job.memoryBytes,
          NetworkMode: this.network,
        },
      });
    } catch (err) {
      const status = (err as { statusCode?: number }).statusCode;
      throw new BuildFailedError('start build container', status === undefined ? `cannot reach the Docker engine: ${(err as Error).message}` : `Docker refused the build container: ${(err as Error).message}`, {
        code: status === undefined ? SlugErrorCodes.EXECUTOR_UNAVAILABLE : SlugErrorCodes.BUILD_FAILED,
        cause: err,
      });
    }
    traceSlug('build container created');
    let timedOut = false;
    let aborted = false;
    const kill = () => container.kill().catch(() => {});
    const timer = setTimeout(() => {
      timedOut = true;
      void kill();
    }, job.timeoutMs);
    const onAbort = () => {
      aborted = true;
      void kill();
    };
    try {
      const stream = await container.attach({ stream: true, stdout: true, stderr: true });
      const lines = new LineSplitter(job.onLine);
      const out = new PassThrough();
      out.on('data', (d: Buffer) => lines.push(d));
      this.docker.modem.demuxStream(stream, out, out);
      const ended = new Promise<void>((resolve) => {
        stream.once('end', resolve);
        stream.once('close', resolve);
        stream.once('error', () => resolve());
      });
      job.signal?.addEventListener('abort', onAbort, { once: true });
      if (job.signal?.aborted) onAbort();
      await container.start();
      traceSlug('build container started');
      const { StatusCode } = (await container.wait()) as { StatusCode: number };
      traceSlug('build container exited');
      await Promise.race([ended, new Promise((r) => setTimeout(r, 1000))]);
      lines.flush();
      // Only a killed build (137) can have been killed for its memory: spare the engine a round trip otherwise.
      const state = StatusCode === 137 ? (await container.inspect().catch(() => undefined))?.State : undefined;
      return { exitCode: timedOut || aborted ? -1 : StatusCode, timedOut, aborted, oomKilled: state?.OOMKilled === true };
    } finally {
      clearTimeout(timer);
      job.signal?.removeEventListener('abort', onAbort);
      await container.remove({ force: true }).catch(() => {});
      traceSlug('build container removed');
    }
  }
}
