/**
 * The production runtime: one Docker container per job, through dockerode against the local
 * engine. Containers carry the project's labels and the job spec without its env values (labels
 * are shown to anyone who lists containers; the env lives only in the container's config), so a
 * restarted agent finds its containers again (by label) and adopts them instead of starting
 * duplicates, taking the env back from the container.
 */
import { readFile } from 'node:fs/promises';
import { PassThrough, type Readable } from 'node:stream';
import Dockerode from 'dockerode';
import { caBundleMount } from '../common/ca-bundle.js';
import { childSignal, CloseGuard, settlesWithin, sleep } from '../common/lifecycle.js';
import type { Logger } from '../common/logger.js';
import { silentLogger } from '../common/logger.js';
import { dockerError, ignoreGone, statusOf } from './docker-errors.js';
import { DockerJobImage } from './docker-job-image.js';
import { containerName, DOCKER_LABELS, labelSpec, specFromLabel, type LabelledSpec } from './docker-labels.js';
import { DOCKER_RUNTIME_DEFAULTS, type DockerRuntimeOptions } from './docker-runtime-options.js';
import { attachStdio, demuxLogs } from './docker-streams.js';
import { RuntimeError } from './errors.js';
import { EventFanout } from './event-fanout.js';
import { dockerImageLoader } from './image-archive.js';
import { listensOutsideLoopback } from './socket-table.js';
import { traceHost } from './trace.js';
import type { ImageLoader, JobStdio, LogOptions, Runtime, RuntimeEvent, RuntimeJob, RuntimeJobSpec, StopOptions } from './runtime.js';
import { ARTIFACT_MOUNT_PATH } from './runtime.js';
import type { ExitStatus, LogLine } from './types.js';

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
  private readonly jobImage: DockerJobImage;
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

  constructor(options: DockerRuntimeOptions = {}) {
    this.docker = options.docker ?? new Dockerode();
    this.images = dockerImageLoader(this.docker);
    this.labels = { ...options.labels };
    this.init = options.init ?? DOCKER_RUNTIME_DEFAULTS.init;
    this.ca = caBundleMount(options.caBundle === undefined ? DOCKER_RUNTIME_DEFAULTS.caBundle : options.caBundle);
    this.stack = options.stack;
    this.user = options.user ?? DOCKER_RUNTIME_DEFAULTS.user;
    this.network = options.network ?? DOCKER_RUNTIME_DEFAULTS.network;
    this.logger = (options.logger ?? silentLogger).child({ component: 'docker-runtime' });
    const image = options.image ?? DOCKER_RUNTIME_DEFAULTS.image;
    this.jobImage = new DockerJobImage(this.docker, image, options.buildImage ?? image === DOCKER_RUNTIME_DEFAULTS.image, this.logger);
  }

  async start(spec: RuntimeJobSpec): Promise<RuntimeJob> {
    this.guard.assertOpen();
    const { job, hostId } = spec;
    const { image, stack: imageStack } = await this.jobImage.imageFor(job.image);
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

/**
 * Whether `pid` is the container's process on this machine: its cgroup names the container id. A pid
 * reused after the container ended, or the pid of an engine on another machine, is not.
 */
async function ownedBy(container: { pid: number; id: string }): Promise<boolean> {
  return (await readFile(`/proc/${container.pid}/cgroup`, 'utf8').catch(() => '')).includes(container.id);
}
