/**
 * Interactive one-off jobs (`flynn run` in a terminal, `echo hi | flynn run cat`):
 * `GET /apps/:app/run` with `Upgrade: flynn-attach`, authenticated with the cluster key like every
 * other endpoint. The client's first frame is `start` (an {@link AttachRunInput}); the controller
 * starts the job with its stdin open (and a tty when asked), attaches to it on its host, answers
 * `job`, then relays frames both ways until `exit` (or `error`). A client that goes away before the
 * exit stops the job, as a closed `heroku run` does.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { FlynnError, type WireError } from '../common/errors.js';
import { acceptAttach, FrameType, frameJson, refuseAttach, wantsAttach, type Frame, type FrameChannel } from '../common/http/frames.js';
import type { KeyCheck } from '../common/http/key-auth.js';
import { ControllerConflictError, ControllerErrorCodes, ControllerInputError } from './errors.js';
import type { AttachedJob, JobRunner, OneOffJobSpec } from './jobs.js';
import type { Store } from './store.js';
import type { AttachRunInput, RunJobInput } from './types.js';
import { validateConfigKey } from './validate.js';

const RUN_PATH = /^\/apps\/([^/?]{1,200})\/run(?:\?.*)?$/;
/** How long the client has to send its `start` frame, in ms. */
const START_TIMEOUT_MS = 10_000;
const CLIENT_FRAMES: ReadonlySet<number> = new Set([FrameType.stdin, FrameType.eof, FrameType.resize, FrameType.signal]);

/** The one-off job a run request asks for: the app's current release, its slug and env plus the request's. */
export async function oneOffSpec(store: Store, appRef: string, input: RunJobInput, checkEnv: (env: Record<string, string>, field: string) => void): Promise<OneOffJobSpec> {
  const a = await store.getApp(appRef);
  for (const k of Object.keys(input.env ?? {})) validateConfigKey(k);
  if (a.releaseId === null) throw new ControllerInputError('app', `app ${a.name} has no release to run a command in: deploy first`);
  const release = await store.getRelease(a.id, a.releaseId);
  const artifact = release.artifactId === null ? null : await store.getArtifact(release.artifactId);
  const env = { ...release.env, ...input.env };
  checkEnv(env, 'env');
  const spec: OneOffJobSpec = { appId: a.id, appName: a.name, release, artifactUrl: artifact?.url ?? null, artifactType: artifact?.type ?? 'slug', cmd: input.cmd, env };
  if (input.memoryMb !== undefined) spec.memoryBytes = input.memoryMb * 1024 * 1024;
  if (artifact?.archiveUrl !== undefined) spec.archiveUrl = artifact.archiveUrl;
  if (artifact?.sha256 !== undefined) spec.artifactSha256 = artifact.sha256;
  return spec;
}

export interface RunUpgradeOptions {
  store: Store;
  jobs: JobRunner;
  checkKey: (authorization: string | undefined) => KeyCheck;
  /** Throws when an env is over the controller's size limits. */
  checkEnv: (env: Record<string, string>, field: string) => void;
  /** Called with each accepted connection (the server destroys them on close). */
  track: (socket: Duplex) => void;
}

/** The server's `upgrade` listener. */
export function runUpgradeHandler(options: RunUpgradeOptions) {
  return (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => {});
    const check = options.checkKey(req.headers.authorization);
    if (check !== 'ok') {
      const message = check === 'missing' ? 'missing cluster key (Authorization: Bearer <key> or Basic auth password)' : 'wrong cluster key';
      refuseAttach(socket, 401, { code: ControllerErrorCodes.UNAUTHORIZED, message, retryable: false }, { 'WWW-Authenticate': 'Basic realm="flynn-controller"' });
      return;
    }
    const app = RUN_PATH.exec(req.url ?? '')?.[1];
    if (req.method !== 'GET' || app === undefined || !wantsAttach(req)) {
      refuseAttach(socket, 404, { code: 'FLYNN_ERR_HTTP_NOT_FOUND', message: `no such upgrade endpoint: ${req.method} ${req.url}`, retryable: false });
      return;
    }
    options.track(socket);
    void relay(options, decodeURIComponent(app), acceptAttach(socket, head));
  };
}

async function relay(options: RunUpgradeOptions, appRef: string, client: FrameChannel): Promise<void> {
  let attached: AttachedJob | undefined;
  let ended = false;
  try {
    const frames = client[Symbol.asyncIterator]();
    const first = await firstFrame(frames, client);
    const input = parseStart(first);
    const spec = await oneOffSpec(options.store, appRef, input, options.checkEnv);
    if (!options.jobs.attachJob) throw new ControllerConflictError('this cluster cannot run interactive jobs');
    attached = await options.jobs.attachJob({ ...spec, tty: input.tty === true });
    const job = attached;
    if (!client.sendJson(FrameType.job, { id: job.id })) throw new Error('client went away');
    // Client → host; a client gone before the exit stops the job.
    void (async () => {
      for (let next = await frames.next(); !next.done; next = await frames.next()) if (CLIENT_FRAMES.has(next.value.type)) job.channel.send(next.value.type, next.value.data);
    })()
      .catch(() => {})
      .finally(() => {
        if (ended) return;
        job.channel.close();
        void job.stop().catch(() => {});
      });
    // Host → client, up to its last frame.
    for await (const f of job.channel) {
      if (f.type === FrameType.exit || f.type === FrameType.error) {
        ended = true;
        client.send(f.type, f.data);
        client.socket.end();
        return;
      }
      if (f.type === FrameType.stdout || f.type === FrameType.stderr) client.send(f.type, f.data);
    }
    ended = true;
    client.finish(FrameType.error, wire(new Error(`lost the connection to the host of job ${job.id}`)));
  } catch (err) {
    ended = true;
    client.finish(FrameType.error, wire(err));
    if (attached) void attached.stop().catch(() => {});
  }
}

async function firstFrame(frames: AsyncIterator<Frame>, client: FrameChannel): Promise<Frame> {
  const timer = setTimeout(() => client.close(), START_TIMEOUT_MS);
  try {
    const next = await frames.next();
    if (next.done) throw new ControllerInputError('start', 'the connection closed before a start frame');
    return next.value;
  } finally {
    clearTimeout(timer);
  }
}

function parseStart(frame: Frame): AttachRunInput {
  const v = frame.type === FrameType.start ? frameJson<Record<string, unknown>>(frame) : undefined;
  if (typeof v !== 'object' || v === null) throw new ControllerInputError('start', 'the first frame must be a start frame: { cmd, env?, tty?, memoryMb? }');
  const { cmd, env, tty, memoryMb } = v;
  if (!Array.isArray(cmd) || cmd.length === 0 || !cmd.every((c) => typeof c === 'string')) throw new ControllerInputError('cmd', 'invalid start: cmd must be a non-empty array of strings');
  const input: AttachRunInput = { cmd: cmd as string[] };
  if (env !== undefined) {
    if (typeof env !== 'object' || env === null || Array.isArray(env) || !Object.values(env).every((x) => typeof x === 'string')) throw new ControllerInputError('env', 'invalid start: env must map names to strings');
    input.env = env as Record<string, string>;
  }
  if (tty !== undefined) {
    if (typeof tty !== 'boolean') throw new ControllerInputError('tty', 'invalid start: tty must be a boolean');
    input.tty = tty;
  }
  if (memoryMb !== undefined) {
    if (typeof memoryMb !== 'number' || !Number.isInteger(memoryMb) || memoryMb < 6 || memoryMb > 1_048_576) throw new ControllerInputError('memoryMb', 'invalid start: memoryMb must be an integer from 6 to 1048576');
    input.memoryMb = memoryMb;
  }
  return input;
}

/** An error frame's payload: the wire error and the HTTP status it would have had. */
function wire(err: unknown): WireError & { status: number } {
  return err instanceof FlynnError ? { ...err.toWire(), status: err.status } : { code: 'FLYNN_ERR_INTERNAL', message: (err as Error).message, retryable: false, status: 500 };
}
