import { PassThrough, type Duplex } from 'node:stream';
import { caBundleMount } from '../common/ca-bundle.js';
import { settlesWithin } from '../common/lifecycle.js';
import Dockerode from 'dockerode';
import { SlugErrorCodes, BuildFailedError } from './errors.js';
import type { BuildExecutor, BuildJob, BuildJobResult, BuildJobSetup, PreparedBuildJob } from './executor.js';
import { LineSplitter, matchesSetup } from './executor.js';
import { traceSlug } from './trace.js';

export const DOCKER_EXECUTOR_DEFAULTS = Object.freeze({
  /** The slim runtime image (`ensureRuntimeImage` builds it): node + busybox. The platform picks the stack image when it is built. */
  image: 'flynn-ts/runtime:latest',
  /** Builds reach the network (npm registry, git dependencies) as on Heroku; `none` isolates them. */
  network: 'bridge',
  /** The host's CA bundle, mounted read-only over the image's: a TLS-intercepting proxy's CA is trusted in builds too. */
  caBundle: '/etc/ssl/certs/ca-certificates.crt',
  /** A prepared build container that gets no job within this many ms is removed, in ms. */
  preparedIdleMs: 120_000,
  /** Builds run as `app` (uid/gid 1000) of the image, not root. */
  user: { uid: 1000, gid: 1000 },
});

export interface DockerBuildExecutorOptions {
  /** Docker client. Default `new Dockerode()`. */
  docker?: Dockerode;
  /** Image the build runs in. Default {@link DOCKER_EXECUTOR_DEFAULTS}.image. */
  image?: string;
  /** Docker network mode: `bridge` (default), `host`, or `none` for builds with no network. */
  network?: string;
  /**
   * Host CA bundle mounted read-only over the image's bundle in every build container, with
   * `NODE_EXTRA_CA_CERTS` and `SSL_CERT_FILE` pointing at it; skipped when the
   * file is missing. `null` mounts none. Default {@link DOCKER_EXECUTOR_DEFAULTS}.caBundle.
   */
  caBundle?: string | null;
  /** Extra environment of every build (e.g. `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY`); the job's own env wins. */
  env?: Record<string, string>;
  /** `$STACK` of the builds (e.g. `flynn-ts-12`). Default: unset, the image's own `STACK` env (the stack image sets one). */
  stack?: string;
  /** Extra labels on every build container (tests add their own to clean up). */
  labels?: Record<string, string>;
  /** Default {@link DOCKER_EXECUTOR_DEFAULTS}.preparedIdleMs. */
  preparedIdleMs?: number;
  /** Who builds run as. Default {@link DOCKER_EXECUTOR_DEFAULTS}.user when this process is root, else this process's uid/gid (who owns the scratch dirs). */
  user?: { uid: number; gid: number };
}

/** A created build container with its output attached. */
interface Attached {
  container: Dockerode.Container;
  stream: Duplex;
  /** Settles when the output stream has ended. */
  ended: Promise<void>;
  /** The output stream has ended: the container exited or is gone. */
  closed: boolean;
  /** Where output lines go; set once the job is known. */
  sink: { onLine: (line: string) => void };
  lines: LineSplitter;
}

/**
 * Runs the build in a fresh container of the image (the stack image on a platform that has it):
 * labelled `io.flynn-ts=1`, `io.flynn-ts.role=build`, with the job's mounts as bind mounts, the
 * host's CA bundle, its memory limit (swap included), the bridge network by default, and removed
 * when done, whatever happened.
 *
 * {@link prepare} creates and starts such a container before the job is known (e.g. while the
 * source is still being pushed, which hides the engine's container start from the build time):
 * the container's shell waits on its stdin, and `run` writes the job's environment and command
 * there. Each prepared container serves one job and is never reused.
 */
export class DockerBuildExecutor implements BuildExecutor {
  readonly name = 'docker';
  readonly offline: boolean;
  readonly stack: string | undefined;
  private readonly docker: Dockerode;
  private readonly image: string;
  private readonly network: string;
  private readonly binds: string[];
  private readonly env: Record<string, string>;
  private readonly labels: Record<string, string>;
  private readonly preparedIdleMs: number;
  readonly runsAs: { uid: number; gid: number };

  constructor(options: DockerBuildExecutorOptions = {}) {
    this.docker = options.docker ?? new Dockerode();
    this.image = options.image ?? DOCKER_EXECUTOR_DEFAULTS.image;
    this.network = options.network ?? DOCKER_EXECUTOR_DEFAULTS.network;
    this.offline = this.network === 'none';
    this.stack = options.stack;
    const ca = caBundleMount(options.caBundle === undefined ? DOCKER_EXECUTOR_DEFAULTS.caBundle : options.caBundle);
    this.binds = ca.binds;
    this.env = { ...ca.env, ...options.env };
    this.labels = { ...options.labels, 'io.flynn-ts': '1', 'io.flynn-ts.role': 'build' };
    this.preparedIdleMs = options.preparedIdleMs ?? DOCKER_EXECUTOR_DEFAULTS.preparedIdleMs;
    const self = process.getuid?.() ?? 0;
    this.runsAs = options.user ?? (self === 0 ? { ...DOCKER_EXECUTOR_DEFAULTS.user } : { uid: self, gid: process.getgid?.() ?? self });
  }

  async run(job: BuildJob): Promise<BuildJobResult> {
    const attached = await this.createAttached(job, { cmd: job.argv, env: job.env, workDir: job.workDir, stdin: false });
    attached.sink.onLine = job.onLine;
    return this.finish(attached, job, () => attached.container.start().then(() => traceSlug('build container started')));
  }

  prepare(setup: BuildJobSetup): PreparedBuildJob {
    return new PreparedDockerBuild(this, { mounts: setup.mounts.map((m) => ({ ...m })), memoryBytes: setup.memoryBytes }, this.preparedIdleMs);
  }

  /** Create a build container and attach to its output (and, with `stdin`, its input). */
  async createAttached(setup: BuildJobSetup, how: { cmd: string[]; env: Record<string, string>; workDir?: string; stdin: boolean }): Promise<Attached> {
    let container: Dockerode.Container;
    try {
      container = await this.docker.createContainer({
        Image: this.image,
        Cmd: how.cmd,
        User: `${this.runsAs.uid}:${this.runsAs.gid}`,
        Env: Object.entries({ ...this.env, ...how.env }).map(([k, v]) => `${k}=${v}`),
        WorkingDir: how.workDir,
        Labels: this.labels,
        AttachStdin: how.stdin,
        OpenStdin: how.stdin,
        StdinOnce: how.stdin,
        AttachStdout: true,
        AttachStderr: true,
        Tty: false,
        HostConfig: {
          Binds: [...this.binds, ...setup.mounts.map((m) => `${m.hostPath}:${m.path}:${m.readOnly ? 'ro' : 'rw'}`)],
          Memory: setup.memoryBytes,
          MemorySwap: setup.memoryBytes,
          NetworkMode: this.network,
          CapDrop: ['ALL'],
          SecurityOpt: ['no-new-privileges'],
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
    try {
      const stream = (await container.attach({ stream: true, stdout: true, stderr: true, ...(how.stdin ? { stdin: true, hijack: true } : {}) })) as Duplex;
      const sink = { onLine: (_line: string) => {} };
      const lines = new LineSplitter((line) => sink.onLine(line));
      const out = new PassThrough();
      out.on('data', (d: Buffer) => lines.push(d));
      this.docker.modem.demuxStream(stream, out, out);
      const attached: Attached = { container, stream, ended: Promise.resolve(), closed: false, sink, lines };
      attached.ended = new Promise<void>((resolve) => {
        const done = () => {
          attached.closed = true;
          resolve();
        };
        stream.once('end', done);
        stream.once('close', done);
        stream.once('error', done);
      });
      return attached;
    } catch (err) {
      await this.removeContainer(container);
      throw new BuildFailedError('start build container', `cannot attach to the build container: ${(err as Error).message}`, { code: SlugErrorCodes.EXECUTOR_UNAVAILABLE, cause: err });
    }
  }

  /** Start the job (`begin`), wait for it under its timeout and signal, then remove the container. */
  async finish(attached: Attached, job: BuildJob, begin: () => Promise<void>): Promise<BuildJobResult> {
    const { container } = attached;
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
      job.signal?.addEventListener('abort', onAbort, { once: true });
      if (job.signal?.aborted) onAbort();
      await begin();
      const { StatusCode } = (await container.wait()) as { StatusCode: number };
      traceSlug('build container exited');
      await settlesWithin(attached.ended, 1000);
      attached.lines.flush();
      // Only a killed build (137) can have been killed for its memory: spare the engine a round trip otherwise.
      const state = StatusCode === 137 ? (await container.inspect().catch(() => undefined))?.State : undefined;
      return { exitCode: timedOut || aborted ? -1 : StatusCode, timedOut, aborted, oomKilled: state?.OOMKilled === true };
    } finally {
      clearTimeout(timer);
      job.signal?.removeEventListener('abort', onAbort);
      await this.removeContainer(container);
    }
  }

  async removeContainer(container: Dockerode.Container): Promise<void> {
    await container.remove({ force: true }).catch(() => {});
    traceSlug('build container removed');
  }
}

const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `'...'` for sh: the value exactly, whatever it holds. */
function shQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** The script a prepared container's shell reads on stdin: the job's environment, directory and command. */
function launchScript(job: BuildJob): string {
  const lines: string[] = [];
  for (const [k, v] of Object.entries(job.env)) {
    if (!ENV_NAME_RE.test(k)) throw new BuildFailedError('start build container', `invalid environment variable name ${JSON.stringify(k)}`);
    lines.push(`export ${k}=${shQuote(v)}`);
  }
  if (job.workDir !== undefined) lines.push(`cd ${shQuote(job.workDir)} || exit 1`);
  lines.push(`exec ${job.argv.map(shQuote).join(' ')}`);
  return `${lines.join('\n')}\n`;
}

/** A started build container whose shell waits on stdin for its one job. */
class PreparedDockerBuild implements PreparedBuildJob {
  private readonly ready: Promise<Attached>;
  private state: 'waiting' | 'used' | 'discarded' = 'waiting';
  private readonly idle: NodeJS.Timeout;

  constructor(
    private readonly executor: DockerBuildExecutor,
    private readonly setup: BuildJobSetup,
    idleMs: number,
  ) {
    this.ready = (async () => {
      // `sh -s` reads its commands from stdin: nothing runs until the job is written there.
      const attached = await executor.createAttached(setup, { cmd: ['/bin/sh', '-s'], env: {}, stdin: true });
      try {
        await attached.container.start();
      } catch (err) {
        attached.stream.destroy();
        await executor.removeContainer(attached.container);
        throw err;
      }
      traceSlug('build container started');
      return attached;
    })();
    this.ready.catch(() => {});
    this.idle = setTimeout(() => void this.discard(), idleMs);
    this.idle.unref();
  }

  async run(job: BuildJob): Promise<BuildJobResult> {
    if (this.state !== 'waiting' || !matchesSetup(job, this.setup)) {
      await this.discard();
      return this.executor.run(job);
    }
    this.state = 'used';
    clearTimeout(this.idle);
    let attached: Attached;
    try {
      attached = await this.ready;
    } catch {
      return this.executor.run(job); // it reports why a container cannot be had
    }
    // Its output stream may not have ended yet when the container went: the engine says whether it still runs.
    if (attached.closed || !(await isRunning(attached.container))) {
      // The waiting container died or was removed by someone else: start a fresh one.
      await this.executor.removeContainer(attached.container);
      return this.executor.run(job);
    }
    attached.sink.onLine = job.onLine;
    return this.executor.finish(attached, job, async () => {
      const script = launchScript(job);
      await new Promise<void>((resolve, reject) => attached.stream.write(script, (err) => (err ? reject(err) : resolve())));
      attached.stream.end(); // closes the shell's stdin (StdinOnce): the job gets no input
    });
  }

  async discard(): Promise<void> {
    if (this.state !== 'waiting') return;
    this.state = 'discarded';
    clearTimeout(this.idle);
    const attached = await this.ready.catch(() => undefined);
    if (!attached) return;
    attached.stream.destroy();
    await this.executor.removeContainer(attached.container);
  }
}

async function isRunning(container: Dockerode.Container): Promise<boolean> {
  const info = await container.inspect().catch(() => undefined);
  return info?.State.Running === true;
}
