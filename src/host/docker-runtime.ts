/**
 * The production runtime: one Docker container per job, through dockerode against the local
 * engine. Containers carry the project's labels and the job spec without its env values (labels
 * are shown to anyone who lists containers; the env lives only in the container's config), so a
 * restarted agent finds its containers again (by label) and adopts them instead of starting
 * duplicates, taking the env back from the container.
 */
import { readFile } from 'node:fs/promises';
import { PassThrough, type Duplex, type Readable } from 'node:stream';
import { AsyncQueue } from '../common/async-queue.js';
import Dockerode from 'dockerode';
import { caBundleMount } from '../common/ca-bundle.js';
import { childSignal, CloseGuard, settlesWithin, sleep } from '../common/lifecycle.js';
import type { Logger } from '../common/logger.js';
import { silentLogger } from '../common/logger.js';
import { DockerUnavailableError, RuntimeError } from './errors.js';
import { EventFanout } from './event-fanout.js';
import { dockerImageLoader } from './image-archive.js';
import { ensureRuntimeImage, RUNTIME_IMAGE_DEFAULTS } from './runtime-image.js';
import { listensOutsideLoopback } from './socket-table.js';
import { findStackImage } from './stack-image.js';
import { traceHost } from './trace.js';
import type { ImageLoader, JobStdio, LogOptions, OutputChunk, Runtime, RuntimeEvent, RuntimeJob, RuntimeJobSpec, StopOptions } from './runtime.js';
import { ARTIFACT_MOUNT_PATH } from './runtime.js';
import type { ExitStatus, LogLine } from './types.js';

/** Label names on every container this runtime creates. */
export const DOCKER_LABELS = Object.freeze({
  project: 'io.flynn-ts',
  host: 'io.flynn-ts.host',
  job: 'io.flynn-ts.job',
  app: 'io.flynn-ts.app',
  type: 'io.flynn-ts.type',
  release: 'io.flynn-ts.release',
  spec: 'io.flynn-ts.spec',
});

export const DOCKER_RUNTIME_DEFAULTS = Object.freeze({
  /**
   * Image for jobs that name none: the stack image (`flynn-ts/stack`, `npm run images`) when it is
   * built, else this slim runtime image, built locally by `ensureRuntimeImage` when missing.
   */
  image: 'flynn-ts/runtime:latest',
  /** Run docker-init as PID 1 so signals reach the job and zombies are reaped. */
  init: true,
  /** The host's CA bundle, mounted read-only over the image's in every job (apps calling out through a TLS-intercepting proxy). */
  caBundle: '/etc/ssl/certs/ca-certificates.crt',
  /** Jobs run as `app` (uid/gid 1000, home `/app`), which the runtime and stack images have, never as root. */
  user: '1000:1000',
  /**
   * The Docker network every job joins: a user-defined bridge (created when missing), so a job's
   * `alias` (e.g. `postgres.flynn`) resolves in the others, as Flynn's discoverd DNS names did.
   */
  network: 'flynn-ts',
});

export interface DockerRuntimeOptions {
  /** Docker client. Default `new Dockerode()` (the local socket or DOCKER_HOST). */
  docker?: Dockerode;
  /** Image for jobs without `image`. Default: the stack image when built, else {@link DOCKER_RUNTIME_DEFAULTS}.image. */
  image?: string;
  /**
   * Without `image`: use the stack image when built, else build the runtime image with
   * `ensureRuntimeImage` when it is missing. Default true when `image` is the default, false
   * otherwise (a custom image must exist in the engine).
   */
  buildImage?: boolean;
  /** Extra labels on every container (tests mark theirs). */
  labels?: Record<string, string>;
  /** Default {@link DOCKER_RUNTIME_DEFAULTS}.init. */
  init?: boolean;
  /**
   * Host CA bundle mounted read-only over the image's in every job, with `NODE_EXTRA_CA_CERTS` and
   * `SSL_CERT_FILE` pointing at it; skipped when the file is missing, none with `null`. Default
   * {@link DOCKER_RUNTIME_DEFAULTS}.caBundle.
   */
  caBundle?: string | null;
  /** `$STACK` of every job (the job's env wins). Default: unset, the image's own `STACK` env (the stack image sets one). */
  stack?: string;
  /** `uid:gid` (or a user name of the image) jobs run as. Default {@link DOCKER_RUNTIME_DEFAULTS}.user. */
  user?: string;
  /** Default {@link DOCKER_RUNTIME_DEFAULTS}.network; `bridge` keeps Docker's default network (no aliases). */
  network?: string;
  logger?: Logger;
}

interface Watched {
  done: Promise<ExitStatus>;
  killed: boolean;
}

export class DockerRuntime implements Runtime {
  readonly name = 'docker';
  readonly mapsPorts = true;
  readonly mountsVolumes = true;
  readonly images: ImageLoader;
  private readonly docker: Dockerode;
  private readonly image: string;
  private readonly buildImage: boolean;
  private readonly labels: Record<string, string>;
  private readonly init: boolean;
  private readonly ca: { binds: string[]; env: Record<string, string> };
  private readonly stack: string | undefined;
  private readonly user: string;
  private readonly network: string;
  private networkReady: Promise<void> | undefined;
  private readonly logger: Logger;
  private readonly guard = new CloseGuard('docker runtime');
  private readonly fanout = new EventFanout<RuntimeEvent>();
  private readonly abort = new AbortController();
  private readonly watched = new Map<string, Watched>();
  /** Stdio of interactive jobs, until an agent takes it. */
  private readonly stdio = new Map<string, JobStdio>();
  /** A running container's main pid, so that readiness probes do not inspect the container each time. */
  private readonly pids = new Map<string, { pid: number; id: string }>();
  private imageReady: Promise<{ image: string; stack?: string }> | undefined;

  constructor(options: DockerRuntimeOptions = {}) {
    this.docker = options.docker ?? new Dockerode();
    this.images = dockerImageLoader(this.docker);
    this.image = options.image ?? DOCKER_RUNTIME_DEFAULTS.image;
    this.buildImage = options.buildImage ?? this.image === DOCKER_RUNTIME_DEFAULTS.image;
    this.labels = { ...options.labels };
    this.init = options.init ?? DOCKER_RUNTIME_DEFAULTS.init;
    this.ca = caBundleMount(options.caBundle === undefined ? DOCKER_RUNTIME_DEFAULTS.caBundle : options.caBundle);
    this.stack = options.stack;
    this.user = options.user ?? DOCKER_RUNTIME_DEFAULTS.user;
    this.network = options.network ?? DOCKER_RUNTIME_DEFAULTS.network;
    this.logger = (options.logger ?? silentLogger).child({ component: 'docker-runtime' });
  }

  async start(spec: RuntimeJobSpec): Promise<RuntimeJob> {
    this.guard.assertOpen();
    const { job, hostId } = spec;
    const { image, stack: imageStack } = await this.imageFor(job.image);
    const stack = this.stack ?? imageStack;
    const exposed: Record<string, object> = {};
    const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
    for (const port of spec.ports) {
      const key = `${port.port}/${port.proto}`;
      exposed[key] = {};
      (bindings[key] ??= []).push({ HostIp: spec.bindAddr, HostPort: String(port.hostPort) });
    }
    const labels: Record<string, string> = {
      ...this.labels,
      [DOCKER_LABELS.project]: '1',
      [DOCKER_LABELS.host]: hostId,
      [DOCKER_LABELS.job]: job.id,
      [DOCKER_LABELS.app]: job.app,
      [DOCKER_LABELS.type]: job.type,
      [DOCKER_LABELS.release]: job.release,
      [DOCKER_LABELS.spec]: JSON.stringify(labelSpec(spec)),
    };
    // Least privilege: an unprivileged user, no capabilities ($PORT is above 1024), no setuid gains.
    const hostConfig: Dockerode.HostConfig = { PortBindings: bindings, Init: this.init, CapDrop: ['ALL'], SecurityOpt: ['no-new-privileges'], NetworkMode: this.network };
    await this.ensureNetwork();
    if (job.limits.memoryBytes !== undefined) {
      hostConfig.Memory = job.limits.memoryBytes;
      hostConfig.MemorySwap = job.limits.memoryBytes; // equal to Memory: no swap
    }
    if (job.limits.cpuShares !== undefined) hostConfig.CpuShares = job.limits.cpuShares;
    const env: Record<string, string> = { ...this.ca.env, ...(stack === undefined ? {} : { STACK: stack }), ...job.env };
    hostConfig.Binds = [...this.ca.binds];
    if (spec.artifactPath !== undefined) {
      hostConfig.Binds.push(`${spec.artifactPath}:${ARTIFACT_MOUNT_PATH}:ro`);
      env.SLUG_URL = `file://${ARTIFACT_MOUNT_PATH}`;
    }
    for (const m of spec.mounts ?? []) hostConfig.Binds.push(`${m.source}:${m.target}${m.readOnly ? ':ro' : ''}`);
    let container: Dockerode.Container;
    try {
      container = await this.docker.createContainer({
        name: containerName(hostId, job.id),
        Image: image,
        Cmd: job.cmd,
        User: this.user,
        Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
        Hostname: typeof job.env.HOSTNAME === 'string' ? job.env.HOSTNAME.slice(0, 63) : undefined,
        ExposedPorts: exposed,
        Labels: labels,
        HostConfig: hostConfig,
        ...(job.alias ? { NetworkingConfig: { EndpointsConfig: { [this.network]: { Aliases: [job.alias] } } } } : {}),
        ...(job.stdin ? { OpenStdin: true, StdinOnce: true, AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: job.tty === true } : {}),
      });
    } catch (err) {
      throw dockerError(`cannot create the container of job ${job.id}`, err);
    }
    traceHost('container created', job.id);
    try {
      // Attached before the start, as `docker run -i` does: no output is lost before a client attaches.
      if (job.stdin) this.stdio.set(containerName(hostId, job.id), await attachStdio(container, job.tty === true));
      await container.start();
    } catch (err) {
      this.stdio.get(containerName(hostId, job.id))?.end();
      this.stdio.delete(containerName(hostId, job.id));
      await container.remove({ force: true }).catch(() => {});
      throw dockerError(`cannot start the container of job ${job.id}`, err);
    }
    traceHost('container started', job.id);
    this.watch(hostId, job.id);
    const found = await this.inspect(hostId, job.id);
    if (!found) throw new RuntimeError(`the container of job ${job.id} vanished right after it started`);
    return found;
  }

  async stop(hostId: string, jobId: string, options: StopOptions): Promise<void> {
    this.guard.assertOpen();
    this.pids.delete(containerName(hostId, jobId));
    const current = await this.inspect(hostId, jobId);
    if (!current?.running) return;
    const watched = this.watch(hostId, jobId);
    const container = this.docker.getContainer(containerName(hostId, jobId));
    await container.kill({ signal: 'SIGTERM' }).catch(ignoreGone);
    if (!(await settlesWithin(watched.done, options.graceMs))) {
      watched.killed = true;
      await container.kill({ signal: 'SIGKILL' }).catch(ignoreGone);
    }
    await watched.done;
  }

  async signal(hostId: string, jobId: string, signal: string): Promise<void> {
    this.guard.assertOpen();
    try {
      await this.docker.getContainer(containerName(hostId, jobId)).kill({ signal });
    } catch (err) {
      throw dockerError(`cannot send ${signal} to job ${jobId}`, err);
    }
  }

  async inspect(hostId: string, jobId: string): Promise<RuntimeJob | undefined> {
    let info: Dockerode.ContainerInspectInfo;
    try {
      info = await this.docker.getContainer(containerName(hostId, jobId)).inspect();
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw dockerError(`cannot inspect job ${jobId}`, err);
    }
    return this.fromInfo(info);
  }

  async listening(hostId: string, jobId: string, port: number): Promise<boolean | undefined> {
    const name = containerName(hostId, jobId);
    const known = this.pids.get(name);
    if (known && (await ownedBy(known))) return listensOutsideLoopback(known.pid, port);
    this.pids.delete(name);
    const info = await this.docker
      .getContainer(name)
      .inspect()
      .catch(() => undefined);
    if (!info?.State.Running || !info.State.Pid) return undefined;
    const found = { pid: info.State.Pid, id: info.Id };
    if (!(await ownedBy(found))) return undefined;
    this.pids.set(name, found);
    return listensOutsideLoopback(found.pid, port);
  }

  async list(hostId: string): Promise<RuntimeJob[]> {
    this.guard.assertOpen();
    let containers: Dockerode.ContainerInfo[];
    try {
      containers = await this.docker.listContainers({
        all: true,
        filters: { label: [`${DOCKER_LABELS.project}=1`, `${DOCKER_LABELS.host}=${hostId}`] },
      });
    } catch (err) {
      throw dockerError('cannot list containers', err);
    }
    const jobs: RuntimeJob[] = [];
    for (const c of containers) {
      const jobId = c.Labels[DOCKER_LABELS.job];
      if (jobId === undefined) continue;
      const job = await this.inspect(hostId, jobId);
      if (job) jobs.push(job);
    }
    return jobs;
  }

  async recover(hostId: string): Promise<RuntimeJob[]> {
    const jobs = await this.list(hostId);
    for (const job of jobs) if (job.running) this.watch(hostId, job.spec.job.id);
    return jobs;
  }

  takeStdio(hostId: string, jobId: string): JobStdio | undefined {
    const name = containerName(hostId, jobId);
    const stdio = this.stdio.get(name);
    this.stdio.delete(name);
    return stdio;
  }

  async remove(hostId: string, jobId: string): Promise<void> {
    this.guard.assertOpen();
    this.watched.delete(containerName(hostId, jobId));
    this.stdio.get(containerName(hostId, jobId))?.end();
    this.stdio.delete(containerName(hostId, jobId));
    await this.docker
      .getContainer(containerName(hostId, jobId))
      .remove({ force: true })
      .catch((err: unknown) => {
        if (statusOf(err) !== 404 && statusOf(err) !== 409) throw dockerError(`cannot remove job ${jobId}`, err);
      });
  }

  async *logs(hostId: string, jobId: string, options: LogOptions = {}): AsyncIterable<LogLine> {
    this.guard.assertOpen();
    const container = this.docker.getContainer(containerName(hostId, jobId));
    let raw: Readable | Buffer;
    try {
      const base = { stdout: true, stderr: true, timestamps: true, ...(options.tail === undefined ? {} : { tail: options.tail }) };
      raw = options.follow
        ? ((await container.logs({ ...base, follow: true, abortSignal: options.signal })) as unknown as Readable)
        : ((await container.logs({ ...base, follow: false })) as unknown as Buffer);
    } catch (err) {
      if (options.signal?.aborted) return;
      throw dockerError(`cannot read the logs of job ${jobId}`, err);
    }
    const source: Readable = Buffer.isBuffer(raw) ? PassThrough.from([raw]) : raw;
    const onAbort = () => source.destroy();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      yield* demuxLogs(source);
    } catch (err) {
      if (!options.signal?.aborted) throw dockerError(`log stream of job ${jobId} broke`, err);
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
      source.destroy();
    }
  }

  events(options: { signal?: AbortSignal } = {}): AsyncIterable<RuntimeEvent> {
    return this.fanout.subscribe(options.signal);
  }

  close(): Promise<void> {
    return this.guard.close(async () => {
      this.abort.abort();
      this.fanout.end();
      this.watched.clear();
      for (const s of this.stdio.values()) s.end();
      this.stdio.clear();
    });
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Create the job network once when missing (another runtime may create it at the same time: its 409 is fine). */
  private ensureNetwork(): Promise<void> {
    if (['bridge', 'host', 'none'].includes(this.network)) return Promise.resolve();
    this.networkReady ??= (async () => {
      if (await this.docker.getNetwork(this.network).inspect().then(() => true, () => false)) return;
      await this.docker.createNetwork({ Name: this.network, Driver: 'bridge', CheckDuplicate: true, Labels: { [DOCKER_LABELS.project]: '1' } }).catch((err: { statusCode?: number }) => {
        if (err.statusCode !== 409) throw dockerError(`cannot create the job network ${this.network}`, err);
      });
    })().catch((err: unknown) => {
      this.networkReady = undefined;
      throw err;
    });
    return this.networkReady;
  }

  /** The image (and `$STACK`) to create a job's container from: the stack image, or the runtime image built first when configured. */
  private async imageFor(requested: string | undefined): Promise<{ image: string; stack?: string }> {
    // Formations and one-off jobs name DOCKER_RUNTIME_DEFAULTS.image when nobody chose an image: it
    // stands for this host's default, i.e. the image this runtime was given (the stack image when built).
    if (requested !== undefined && requested !== this.image && requested !== DOCKER_RUNTIME_DEFAULTS.image) return { image: requested };
    if (!this.buildImage) return { image: this.image };
    this.imageReady ??= this.defaultImage().then(
      (chosen) => {
        this.logger.info('job image ready', chosen);
        return chosen;
      },
      (err: unknown) => {
        this.imageReady = undefined;
        throw err;
      },
    );
    return this.imageReady;
  }

  /** Versioned names, not `:latest`: a retag elsewhere cannot change what jobs run in. Chosen once per runtime. */
  private async defaultImage(): Promise<{ image: string; stack?: string }> {
    if (this.image === DOCKER_RUNTIME_DEFAULTS.image) {
      const stack = await findStackImage(this.docker);
      if (stack) return { image: stack.name }; // it sets STACK itself
      const built = await ensureRuntimeImage({ docker: this.docker });
      return { image: built.name, stack: RUNTIME_IMAGE_DEFAULTS.stack };
    }
    return { image: (await ensureRuntimeImage({ docker: this.docker, name: this.image })).name };
  }

  /** Wait for the container's exit once, and publish it. */
  private watch(hostId: string, jobId: string): Watched {
    const name = containerName(hostId, jobId);
    const existing = this.watched.get(name);
    if (existing) return existing;
    const container = this.docker.getContainer(name);
    const watched: Watched = { killed: false, done: Promise.resolve({ code: 0, reason: 'exit' }) };
    watched.done = (async (): Promise<ExitStatus> => {
      while (!this.abort.signal.aborted) {
        try {
          // A child signal per wait: one listener on the runtime's signal however many containers run.
          const link = childSignal(this.abort.signal);
          try {
            await container.wait({ abortSignal: link.signal });
          } finally {
            link.release();
          }
          const info = await container.inspect();
          if (info.State.Running) continue;
          this.pids.delete(name);
          const exit: ExitStatus = {
            code: info.State.ExitCode,
            reason: info.State.OOMKilled ? 'oom' : watched.killed ? 'killed' : 'exit',
          };
          if (this.watched.get(name) === watched) this.fanout.publish({ type: 'exit', hostId, jobId, exit });
          return exit;
        } catch (err) {
          if (this.abort.signal.aborted) break;
          if (statusOf(err) === 404) {
            this.pids.delete(name);
            const exit: ExitStatus = { code: 137, reason: 'killed' };
            if (this.watched.get(name) === watched) this.fanout.publish({ type: 'exit', hostId, jobId, exit });
            return exit;
          }
          this.logger.warn('waiting for a container failed; retrying', { jobId, err: (err as Error).message });
          await sleep(1000).catch(() => {});
        }
      }
      return { code: 137, reason: 'killed' };
    })();
    this.watched.set(name, watched);
    return watched;
  }

  private fromInfo(info: Dockerode.ContainerInspectInfo): RuntimeJob | undefined {
    const raw = info.Config.Labels?.[DOCKER_LABELS.spec];
    if (raw === undefined) return undefined;
    let spec: RuntimeJobSpec;
    try {
      spec = specFromLabel(JSON.parse(raw) as LabelledSpec, info.Config.Env ?? []);
    } catch {
      this.logger.warn('container with an unreadable job spec label', { container: info.Name });
      return undefined;
    }
    const running = info.State.Running || info.State.Restarting;
    const job: RuntimeJob = { spec, running, startedAt: info.State.StartedAt };
    const ended = !running && info.State.Status !== 'created';
    if (ended) {
      const watched = this.watched.get(containerName(spec.hostId, spec.job.id));
      job.exit = { code: info.State.ExitCode, reason: info.State.OOMKilled ? 'oom' : watched?.killed ? 'killed' : 'exit' };
    }
    return job;
  }
}

/** The job spec as kept in a label: env names only (values are secrets). */
type LabelledSpec = RuntimeJobSpec & { envNames?: string[] };

function labelSpec(spec: RuntimeJobSpec): LabelledSpec {
  return { ...spec, job: { ...spec.job, env: {} }, envNames: Object.keys(spec.job.env) };
}

/** The spec back from its label, its env values from the container's own env (`K=V` lines). */
function specFromLabel(labelled: LabelledSpec, containerEnv: string[]): RuntimeJobSpec {
  const { envNames, ...spec } = labelled;
  if (envNames === undefined) return spec; // a container labelled before env left the label
  const values = new Map(containerEnv.map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)] as const));
  const env: Record<string, string> = {};
  for (const name of envNames) {
    const value = values.get(name);
    if (value !== undefined) env[name] = value;
  }
  return { ...spec, job: { ...spec.job, env } };
}

/** Container names are unique per engine: one host id + job id can never exist twice. */
export function containerName(hostId: string, jobId: string): string {
  return `flynn-${hostId}-${jobId}`;
}

/**
 * Attach to a created container's stdin and output (hijacked). The output is queued from the
 * start until read; without a tty Docker multiplexes stdout and stderr (8-byte frame headers).
 */
async function attachStdio(container: Dockerode.Container, tty: boolean): Promise<JobStdio> {
  const stream = (await container.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true })) as unknown as Duplex;
  const output = new AsyncQueue<OutputChunk>();
  let pending: Buffer = Buffer.alloc(0);
  stream.on('data', (chunk: Buffer) => {
    if (tty) return output.push({ stream: 'stdout', data: chunk });
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 8) {
      const size = pending.readUInt32BE(4);
      if (pending.length < 8 + size) break;
      output.push({ stream: pending[0] === 2 ? 'stderr' : 'stdout', data: pending.subarray(8, 8 + size) });
      pending = pending.subarray(8 + size);
    }
  });
  stream.once('close', () => output.end());
  stream.once('end', () => output.end());
  stream.on('error', () => output.end());
  return {
    output,
    write: (data) => void stream.write(data),
    end: () => void stream.end(),
    resize: async (cols, rows) => {
      if (tty) await container.resize({ w: cols, h: rows });
    },
  };
}

/** Split Docker's multiplexed log stream (8-byte frame headers) into timestamped lines. */
async function* demuxLogs(source: AsyncIterable<Buffer>): AsyncGenerator<LogLine> {
  let pending: Buffer = Buffer.alloc(0);
  const partial: Record<'stdout' | 'stderr', string> = { stdout: '', stderr: '' };
  for await (const chunk of source) {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 8) {
      const size = pending.readUInt32BE(4);
      if (pending.length < 8 + size) break;
      const stream = pending[0] === 2 ? 'stderr' : 'stdout';
      const text = partial[stream] + pending.subarray(8, 8 + size).toString('utf8');
      pending = pending.subarray(8 + size);
      const lines = text.split('\n');
      partial[stream] = lines.pop() ?? '';
      for (const line of lines) yield parseTimestamped(stream, line);
    }
  }
  for (const stream of ['stdout', 'stderr'] as const) if (partial[stream] !== '') yield parseTimestamped(stream, partial[stream]);
}

function parseTimestamped(stream: 'stdout' | 'stderr', raw: string): LogLine {
  const space = raw.indexOf(' ');
  const stamp = space > 0 ? new Date(raw.slice(0, space)) : undefined;
  if (stamp && !Number.isNaN(stamp.getTime())) return { stream, line: raw.slice(space + 1).replace(/\r$/, ''), time: stamp.toISOString() };
  return { stream, line: raw, time: new Date().toISOString() };
}

function statusOf(err: unknown): number | undefined {
  return (err as { statusCode?: number }).statusCode;
}

function ignoreGone(err: unknown): void {
  const status = statusOf(err);
  if (status === 404 || status === 409) return; // gone or not running
  throw err;
}

function dockerError(what: string, err: unknown): Error {
  const status = statusOf(err);
  const message = (err as { json?: { message?: string } }).json?.message ?? (err as Error).message;
  if (status === undefined) return new DockerUnavailableError(`${what}: the Docker engine is not reachable (${message})`, { cause: err });
  return new RuntimeError(`${what}: ${message}`, { cause: err });
}

/**
 * Whether `pid` is the container's process on this machine: its cgroup names the container id. A pid
 * reused after the container ended, or the pid of an engine on another machine, is not.
 */
async function ownedBy(container: { pid: number; id: string }): Promise<boolean> {
  return (await readFile(`/proc/${container.pid}/cgroup`, 'utf8').catch(() => '')).includes(container.id);
}
