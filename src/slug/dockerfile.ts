/**
 * Dockerfile deploys (as Dokku's Dockerfile builder): a pushed tree with a `Dockerfile` is built
 * by the host's Docker engine with the pushed tar as the build context, its output streamed line
 * by line, and the image (pinned by id) becomes the release's artifact. Its `CMD` is the `web`
 * type unless a Procfile says otherwise, and its first `EXPOSE`d TCP port is the web port. For
 * hosts with an engine of their own, the image is also saved into shelf (image-archive.ts).
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import Dockerode from 'dockerode';
import { extract } from 'tar-stream';
import { BuildFailedError, SlugErrorCodes } from './errors.js';
import { LineSplitter } from './executor.js';
import { saveImageArchive, type SaveImageArchiveOptions } from './image-archive.js';
import { parseProcfile } from './procfile.js';
import { SLUG_DEFAULTS } from './types.js';

/** What the top of a pushed tree says about how to build it. */
export interface SourceProbe {
  /** A `Dockerfile` at the top. */
  dockerfile: boolean;
  /** A `.buildpacks` file at the top (buildpacks then win over the Dockerfile). */
  buildpacks: boolean;
  /** The top-level `Procfile`'s text, if any. */
  procfile?: string;
}

const TOP = (name: string) => name.replace(/^\.\//, '');

/** Read the entry names of a tar file (and the Procfile's text) without unpacking it. */
export async function probeSource(tarFile: string): Promise<SourceProbe> {
  const probe: SourceProbe = { dockerfile: false, buildpacks: false };
  const ex = extract();
  ex.on('entry', (header, stream, next) => {
    const name = TOP(header.name);
    if (name === 'Dockerfile' && header.type === 'file') probe.dockerfile = true;
    if (name === '.buildpacks') probe.buildpacks = true;
    if (name === 'Procfile' && header.type === 'file' && header.size !== undefined && header.size < 64 * 1024) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => chunks.push(c as Buffer));
      stream.on('end', () => {
        probe.procfile = Buffer.concat(chunks).toString('utf8');
        next();
      });
      return;
    }
    stream.on('end', next);
    stream.resume();
  });
  await pipeline(createReadStream(tarFile), ex);
  return probe;
}

/** Build args of a Dockerfile build: the config vars the app's meta `docker_build_args` lists (`"A,B"`), those that are set. */
export function dockerBuildArgs(meta: Record<string, string> | undefined, env: Record<string, string>): Record<string, string> {
  const names = (meta?.docker_build_args ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  return Object.fromEntries(names.filter((n) => env[n] !== undefined).map((n) => [n, env[n]!]));
}

export interface DockerfileBuildOptions {
  docker: Dockerode;
  /** The build context: the pushed tree as a tar (read once). */
  context: Readable;
  app: string;
  /** Tag of the image: `flynn-ts-app/<app>:<tag>`. */
  tag: string;
  buildArgs?: Record<string, string>;
  /** The pushed Procfile's text: its types override the image's `CMD` as `web`. */
  procfile?: string;
  /** Labels on the image (besides `io.flynn-ts.app`). */
  labels?: Record<string, string>;
  onOutput?: (line: string) => void;
  signal?: AbortSignal;
  /** Network of the build's RUN steps: `bridge` (the engine's default), `host` or `none`. */
  network?: string;
  /** Stop the build after this many ms (the engine cancels it when the request goes). Default {@link SLUG_DEFAULTS}.timeoutMs, as slug builds. */
  timeoutMs?: number;
  /**
   * Also save the image into this shelf at `/images/<app>/<id hex>.tar`, for hosts whose Docker
   * engine is not the one that built it (they load it before a job starts). Default: not saved
   * (every host runs its jobs on the building engine).
   */
  archive?: Pick<SaveImageArchiveOptions, 'shelf' | 'baseImages'>;
}

export interface DockerfileBuild {
  /** `sha256:...`: what jobs run (pinned, whatever the tag later points at). */
  imageId: string;
  /** `flynn-ts-app/<app>:<tag>`. */
  name: string;
  /** Process types: the image's `CMD` as `web`, the Procfile's on top; `ports[0]` the exposed web port. */
  processes: Record<string, { cmd: string[]; ports?: number[] }>;
  /** Lines of the build that came from the layer cache. */
  cachedSteps: number;
  /** With `archive`: the image's archive in shelf, its size and how long the save took. */
  archive?: { url: string; bytes: number; durationMs: number };
  durationMs: number;
}

/**
 * `docker build` of the pushed tree with the classic builder (the engine's API default: BuildKit
 * over the API needs a session, and dockerode's BuildKit progress decoding mangles RUN output).
 * Output lines go to `onOutput`, indented; a failed step throws a {@link BuildFailedError} whose
 * reason is docker's own error line, also printed as ` !     <line>`.
 */
export async function buildDockerfile(options: DockerfileBuildOptions): Promise<DockerfileBuild> {
  const started = performance.now();
  const { docker, app } = options;
  const emit = options.onOutput ?? (() => {});
  const name = `flynn-ts-app/${app}:${options.tag}`;
  const tail: string[] = [];
  let cachedSteps = 0;
  const lines = new LineSplitter((line) => {
    if (line.trim() === '') return;
    if (/^ ---> Using cache$/.test(line)) cachedSteps++;
    tail.push(line);
    if (tail.length > 30) tail.shift();
    emit(`       ${line}`);
  });
  const fail = (reason: string, cause?: unknown): never => {
    emit(` !     ${reason}`);
    throw new BuildFailedError('docker build', reason, { output: [...tail], cause });
  };
  emit(`-----> Building the Dockerfile with the Docker engine (image ${name})`);
  const timeoutMs = options.timeoutMs ?? SLUG_DEFAULTS.timeoutMs;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  let stream: NodeJS.ReadableStream;
  try {
    stream = await docker.buildImage(options.context, {
      t: name,
      buildargs: options.buildArgs ?? {},
      labels: { ...options.labels, 'io.flynn-ts.app': app },
      rm: true,
      forcerm: true,
      ...(options.network === undefined ? {} : { networkmode: options.network }),
      abortSignal: signal,
    });
  } catch (err) {
    const status = (err as { statusCode?: number }).statusCode;
    throw new BuildFailedError('docker build', status === undefined ? `cannot reach the Docker engine: ${(err as Error).message}` : `Docker refused the build: ${(err as Error).message}`, {
      code: status === undefined ? SlugErrorCodes.EXECUTOR_UNAVAILABLE : SlugErrorCodes.BUILD_FAILED,
      cause: err,
    });
  }
  let error: string | undefined;
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (err) => (err ? reject(err) : resolve()),
      (event: { stream?: string; error?: string; errorDetail?: { message?: string } }) => {
        if (event.stream !== undefined) lines.push(event.stream);
        if (event.error !== undefined) error ??= (event.errorDetail?.message ?? event.error).trim();
      },
    );
  }).catch((err: unknown) => {
    if (options.signal?.aborted) throw new BuildFailedError('docker build', 'the build was cancelled', { code: SlugErrorCodes.BUILD_ABORTED, output: [...tail], cause: err });
    if (timeout.aborted) {
      emit(` !     Build timed out after ${timeoutMs} ms`);
      throw new BuildFailedError('docker build', `timed out after ${timeoutMs} ms`, { code: SlugErrorCodes.BUILD_TIMEOUT, output: [...tail], cause: err });
    }
    error ??= (err as Error).message;
  });
  lines.flush();
  if (error !== undefined) fail(error.split('\n')[0]!);

  const info = await docker.getImage(name).inspect().catch((err: unknown) => fail(`the built image ${name} cannot be inspected: ${(err as Error).message}`));
  const config = info.Config ?? ({} as Dockerode.ImageInspectInfo['Config']);
  const exposed = Object.keys(config.ExposedPorts ?? {}).filter((p) => p.endsWith('/tcp')).map((p) => Number.parseInt(p, 10)).sort((a, b) => a - b);
  const port = exposed[0];
  const processes: DockerfileBuild['processes'] = {};
  const cmd = config.Cmd ?? [];
  if (cmd.length > 0) processes.web = { cmd: [...cmd] };
  const declared = options.procfile === undefined ? {} : parseProcfile(options.procfile);
  for (const [type, command] of Object.entries(declared)) processes[type] = { cmd: ['/bin/sh', '-c', command] };
  if (processes.web && port !== undefined) processes.web.ports = [port];
  emit(`-----> Built ${info.Id.slice(0, 19)} (${(info.Size / 1e6).toFixed(1)} MB)${cachedSteps > 0 ? `, ${cachedSteps} step${cachedSteps === 1 ? '' : 's'} from the layer cache` : ''}`);
  emit('-----> Discovering process types');
  if (options.procfile !== undefined) emit(`       Procfile declares types -> ${Object.keys(declared).join(', ') || '(none)'}`);
  emit(`       Image CMD -> ${cmd.length > 0 ? `web (${JSON.stringify(cmd)})` : (config.Entrypoint ?? []).length > 0 ? '(none: an ENTRYPOINT without CMD cannot be the web type; add a CMD or a Procfile web line)' : '(none)'}`);
  if (port !== undefined) emit(`       EXPOSE ${port}: web listens there, PORT=${port}`);
  const built: DockerfileBuild = { imageId: info.Id, name, processes, cachedSteps, durationMs: 0 };
  if (options.archive) {
    emit('-----> Saving the image into shelf, for hosts with an engine of their own');
    const saved = await saveImageArchive({ docker, ...options.archive, image: { name, id: info.Id }, path: `/images/${app}/${info.Id.slice('sha256:'.length)}.tar`, signal }).catch((err: unknown) =>
      fail(`the image could not be saved into shelf: ${(err as Error).message}`, err),
    );
    emit(`       ${saved.bytes < 1e6 ? `${(saved.bytes / 1e3).toFixed(1)} KB` : `${(saved.bytes / 1e6).toFixed(1)} MB`} in ${(saved.durationMs / 1000).toFixed(1)} s${saved.base ? ` (without the ${saved.leftOut} layer${saved.leftOut === 1 ? '' : 's'} of ${saved.base}, which every host has)` : ''}`);
    built.archive = { url: saved.url, bytes: saved.bytes, durationMs: saved.durationMs };
  }
  built.durationMs = Math.round(performance.now() - started);
  return built;
}
