import type { Readable } from 'node:stream';
import { UnavailableError } from '../common/errors.js';
import type { SseEvent } from '../common/http/sse.js';
import { errorFromStream } from '../common/http/stream-error.js';
import { HttpJsonClient } from '../common/http/json-client.js';
import { watchState } from '../common/watch.js';
import { ATTACH_PROTOCOL } from '../common/http/frames.js';
import { openRunSession, type RunOptions, type RunSession } from './run-session.js';
import type { TlsTrust } from '../common/tls/pin.js';
import { openSse } from './client-sse.js';
import { scaleAndWait, waitForDeployment } from './client-waits.js';
import { controllerError } from './errors.js';
import type {
  App,
  Artifact,
  ControllerEvent,
  CreateAppInput,
  CreateArtifactInput,
  CreateReleaseInput,
  DeployGitInput,
  Deployment,
  DeploymentStrategy,
  Formation,
  Job,
  Key,
  LogLine,
  Release,
  RollbackChange,
  EnvChange,
  RunJobInput,
  AttachRunInput,
  RunOutput,
  UpdateAppInput,
  Resource,
  ResourceChange,
} from './types.js';
import type { CreateRouteInput, RouteView, UpdateHttpRouteInput } from './route-types.js';

export interface ControllerClientOptions {
  /** Controller URL, e.g. `https://127.0.0.1:8081`. */
  url: string;
  /** The cluster key. */
  key: string;
  /** How to trust the controller's certificate: `{ pin }` (what `npm start` prints after `-p`) or `{ ca }`. Default the system CAs. */
  tls?: TlsTrust;
}

export interface WaitOptions {
  signal?: AbortSignal;
  /** Give up after this many ms. Default 120 000. */
  timeoutMs?: number;
}

const e = encodeURIComponent;

/**
 * The typed client of the controller API: one method per endpoint. Errors are rebuilt into the
 * server's FlynnError classes (match on `code`). Apps are addressed by name or id.
 */
export class ControllerClient {
  private readonly http: HttpJsonClient;

  constructor(options: ControllerClientOptions) {
    this.http = new HttpJsonClient({ url: options.url, key: options.key, ...(options.tls ? { tls: options.tls } : {}) });
  }

  get url(): string {
    return this.http.url;
  }

  status(): Promise<{ status: string; gitHost: string | null }> {
    return this.json('GET', '/status');
  }

  // apps
  createApp(input: CreateAppInput): Promise<App> {
    return this.json('POST', '/apps', { body: input });
  }
  listApps(): Promise<App[]> {
    return this.json('GET', '/apps');
  }
  getApp(app: string): Promise<App> {
    return this.json('GET', `/apps/${e(app)}`);
  }
  updateApp(app: string, patch: UpdateAppInput): Promise<App> {
    return this.json('PATCH', `/apps/${e(app)}`, { body: patch });
  }
  deleteApp(app: string): Promise<App> {
    return this.json('DELETE', `/apps/${e(app)}`);
  }

  // artifacts and releases
  createArtifact(input: CreateArtifactInput): Promise<Artifact> {
    return this.json('POST', '/artifacts', { body: input });
  }
  listArtifacts(): Promise<Artifact[]> {
    return this.json('GET', '/artifacts');
  }
  getArtifact(id: string): Promise<Artifact> {
    return this.json('GET', `/artifacts/${e(id)}`);
  }
  createRelease(app: string, input: CreateReleaseInput): Promise<Release> {
    return this.json('POST', `/apps/${e(app)}/releases`, { body: input });
  }
  listReleases(app: string): Promise<Release[]> {
    return this.json('GET', `/apps/${e(app)}/releases`);
  }
  /** By id or version (`3`, `v3`). */
  getRelease(app: string, release: string): Promise<Release> {
    return this.json('GET', `/apps/${e(app)}/releases/${e(release)}`);
  }
  /** The running release; throws a NotFoundError when there is none. */
  currentRelease(app: string): Promise<Release> {
    return this.json('GET', `/apps/${e(app)}/release`);
  }

  // deployments
  /** Start a deployment (it runs in the background: see {@link waitForDeployment}). */
  deploy(app: string, release: string, strategy?: DeploymentStrategy): Promise<Deployment> {
    return this.json('POST', `/apps/${e(app)}/deploy`, { body: { release, ...(strategy ? { strategy } : {}) } });
  }
  listDeployments(app: string): Promise<Deployment[]> {
    return this.json('GET', `/apps/${e(app)}/deployments`);
  }
  getDeployment(app: string, id: string): Promise<Deployment> {
    return this.json('GET', `/apps/${e(app)}/deployments/${e(id)}`);
  }
  /**
   * The deployment now, then again after each of its changes (from `/events`). A dropped event
   * stream is opened again and the deployment re-read, so no change is missed.
   */
  watchDeployment(app: string, id: string, options: { signal?: AbortSignal } = {}): AsyncIterable<Deployment> {
    return watchState(
      () => this.getDeployment(app, id),
      async (signal) => {
        const events = await this.openEvents({ app, signal });
        return (async function* () {
          for await (const ev of events) if (ev.object === 'deployment' && ev.objectId === id) yield ev;
        })();
      },
      options,
    );
  }
  /** Wait until the deployment completes; throws a DeployFailedError when it failed. */
  waitForDeployment(app: string, id: string, options: WaitOptions = {}): Promise<Deployment> {
    return waitForDeployment(this, app, id, options);
  }
  /** Roll back to `release` (default: the one before the current). Creates a new release (a copy of `target`) and deploys it. */
  rollback(app: string, release?: string): Promise<RollbackChange> {
    return this.json('POST', `/apps/${e(app)}/rollback`, { body: release === undefined ? {} : { release } });
  }

  // env
  getEnv(app: string): Promise<Record<string, string>> {
    return this.json('GET', `/apps/${e(app)}/env`);
  }
  /**
   * Set and/or unset variables: a new release, deployed. A change that changes nothing creates no
   * release (`deployment: null`); `unchanged` names the keys that had no effect.
   */
  updateEnv(app: string, change: { set?: Record<string, string>; unset?: string[] }): Promise<EnvChange> {
    return this.json('PATCH', `/apps/${e(app)}/env`, { body: change });
  }
  setEnv(app: string, vars: Record<string, string>): Promise<EnvChange> {
    return this.updateEnv(app, { set: vars });
  }
  unsetEnv(app: string, keys: string[]): Promise<EnvChange> {
    return this.updateEnv(app, { unset: keys });
  }

  // providers and resources (resources.ts)
  /** The providers, e.g. `[{ name: 'postgres', app: 'postgres' }]` (`app`: the platform app that serves it). */
  listProviders(): Promise<{ name: string; app: string }[]> {
    return this.json('GET', '/providers');
  }
  /**
   * Make a resource of `provider` for `app` (e.g. a postgres database): its config vars
   * (`DATABASE_URL`) are set in a new release, deployed. 409 when the app has one already.
   */
  addResource(provider: string, app: string): Promise<ResourceChange> {
    return this.json('POST', `/providers/${e(provider)}/resources`, { body: { app } });
  }
  /** All resources, or those of one app. */
  listResources(app?: string): Promise<Resource[]> {
    return this.json('GET', app === undefined ? '/resources' : `/apps/${e(app)}/resources`);
  }
  /** Unset the resource's config vars (a new release, deployed), then destroy it (drop the database). */
  removeResource(provider: string, id: string): Promise<ResourceChange> {
    return this.json('DELETE', `/providers/${e(provider)}/resources/${e(id)}`);
  }

  // formations
  listAllFormations(): Promise<Formation[]> {
    return this.json('GET', '/formations');
  }
  listFormations(app: string): Promise<Formation[]> {
    return this.json('GET', `/apps/${e(app)}/formations`);
  }
  getFormation(app: string, release: string): Promise<Formation> {
    return this.json('GET', `/apps/${e(app)}/formations/${e(release)}`);
  }
  putFormation(app: string, release: string, processes: Record<string, number>): Promise<Formation> {
    return this.json('PUT', `/apps/${e(app)}/formations/${e(release)}`, { body: { processes } });
  }
  /**
   * Scale the running release: `{ web: 8, worker: 2 }` (types not named keep their count). A type
   * the release does not have throws a `ProcessTypeNotFoundError` naming the types it has.
   */
  scale(app: string, processes: Record<string, number>): Promise<Formation> {
    return this.json('PUT', `/apps/${e(app)}/scale`, { body: { processes } });
  }
  /**
   * {@link scale}, then wait until every scaled type runs exactly its count of jobs, all up, and
   * the jobs the scale started stayed up for `holdMs` (docs/controller.md#waiting-for-a-scale);
   * `upMs` is how long they took to come up. Throws a `ScaleFailedError` in one line when a job it
   * started crashed or failed to start (how many, the exit status, its last output), a
   * `ScaleTimeoutError` after `timeoutMs`; the count stays as asked either way.
   *
   * ```ts
   * const { upMs } = await client.scaleAndWait('myapp', { web: 3 });
   * ```
   */
  scaleAndWait(app: string, processes: Record<string, number>, options: WaitOptions & { holdMs?: number } = {}): Promise<{ formation: Formation; upMs: number }> {
    return scaleAndWait(this, app, processes, options);
  }

  /**
   * Build and deploy `app` from a git URL (Taffy): the cluster fetches `url` at `ref` (default: its
   * default branch) and deploys it as a push would. The build's lines reach `onOutput` as they come;
   * resolves once deployed, or rejects with the one-line reason (the current release keeps serving):
   *
   * ```ts
   * await client.deployGit('web', { url: 'https://git.example.com/web.git', ref: 'v2' }, { onOutput: console.log });
   * ```
   */
  async deployGit(app: string, input: DeployGitInput, options: { onOutput?: (line: string) => void; signal?: AbortSignal } = {}): Promise<void> {
    for await (const ev of this.sse('POST', `/apps/${e(app)}/deploy-git`, { body: input, ...(options.signal ? { signal: options.signal } : {}) })) {
      const data = JSON.parse(ev.data) as Record<string, unknown>;
      if (ev.event === 'output') options.onOutput?.(String(data.line));
      else if (ev.event === 'done') return;
      else if (ev.event === 'error') throw errorFromStream(data);
    }
    throw new UnavailableError('FLYNN_ERR_HTTP_UNREACHABLE', `the deploy of ${app} ended without a result: the connection to the controller dropped`);
  }

  // jobs
  /** The app's jobs; with `all`, also the ended ones its hosts keep (with `exit` and `endedAt`). */
  listJobs(app: string, options: { all?: boolean } = {}): Promise<Job[]> {
    return this.json('GET', `/apps/${e(app)}/jobs`, options.all ? { query: { all: 1 } } : {});
  }
  /**
   * The app's jobs now, then again after each change to them (`GET /apps/:app/jobs?watch=1`); a
   * dropped stream is opened again and the jobs re-read.
   */
  watchJobs(app: string, options: { signal?: AbortSignal } = {}): AsyncIterable<Job[]> {
    return watchState(() => this.listJobs(app), (signal) => openSse(this.http, 'GET', `/apps/${e(app)}/jobs`, { query: { watch: 1 }, signal }), options);
  }
  killJob(app: string, job: string): Promise<void> {
    return this.json('DELETE', `/apps/${e(app)}/jobs/${e(job)}`);
  }
  /** Start a one-off job without waiting for it. */
  runDetached(app: string, input: Omit<RunJobInput, 'attach'>): Promise<{ id: string }> {
    return this.json('POST', `/apps/${e(app)}/jobs`, { body: { ...input, attach: false } });
  }
  /**
   * Run a one-off job in the app's current release (its slug and env, as `heroku run` does).
   *
   * `run(app, cmd, { stdin, tty, ... })` opens an interactive session over one upgraded connection
   * (`GET /apps/:app/run`): the job's stdin is streamed, with `tty` it gets a pseudo-terminal, and
   * `exit` resolves with its status:
   *
   * ```ts
   * const session = client.run('web', ['cat'], { stdin: 'hi\n' });
   * for await (const chunk of session.output) process.stdout.write(chunk.data);
   * console.log(await session.exit); // 0
   * ```
   *
   * `run(app, { cmd, env })` streams the output of a job without stdin (SSE); the last item is
   * `{ kind: 'exit', status }`.
   */
  run(app: string, cmd: string[], options?: RunOptions): RunSession;
  run(app: string, input: Omit<RunJobInput, 'attach'>, options?: { signal?: AbortSignal }): AsyncGenerator<RunOutput | { kind: 'job'; id: string }>;
  run(app: string, what: string[] | Omit<RunJobInput, 'attach'>, options: RunOptions = {}): RunSession | AsyncGenerator<RunOutput | { kind: 'job'; id: string }> {
    if (!Array.isArray(what)) return this.runOutput(app, what, options.signal ? { signal: options.signal } : {});
    const input: AttachRunInput = { cmd: what };
    if (options.env) input.env = options.env;
    if (options.tty) input.tty = true;
    if (options.memoryMb !== undefined) input.memoryMb = options.memoryMb;
    const connect = () => this.http.upgrade(`/apps/${e(app)}/run`, ATTACH_PROTOCOL, { probePath: `/apps/${e(app)}`, ...(options.signal ? { signal: options.signal } : {}) }).catch((err: unknown) => Promise.reject(controllerError(err)));
    return openRunSession(connect, input, options);
  }

  private async *runOutput(app: string, input: Omit<RunJobInput, 'attach'>, options: { signal?: AbortSignal }): AsyncGenerator<RunOutput | { kind: 'job'; id: string }> {
    for await (const ev of this.sse('POST', `/apps/${e(app)}/jobs`, { body: { ...input, attach: true }, ...(options.signal ? { signal: options.signal } : {}) })) {
      const data = JSON.parse(ev.data) as Record<string, unknown>;
      if (ev.event === 'job') yield { kind: 'job', id: String(data.id) };
      else if (ev.event === 'output') yield { kind: 'output', stream: data.stream as 'stdout' | 'stderr', data: String(data.data) };
      else if (ev.event === 'exit') yield { kind: 'exit', status: Number(data.status) };
      else if (ev.event === 'error') throw errorFromStream(data);
    }
  }

  /** An app's job logs; with `follow` the stream stays open. */
  async *logs(app: string, query: { job?: string; type?: string; follow?: boolean; lines?: number; signal?: AbortSignal } = {}): AsyncGenerator<LogLine> {
    const q = { job: query.job, type: query.type, follow: query.follow ? '1' : undefined, lines: query.lines };
    for await (const ev of this.sse('GET', `/apps/${e(app)}/log`, { query: q, ...(query.signal ? { signal: query.signal } : {}) })) {
      if (ev.event === 'log') yield JSON.parse(ev.data) as LogLine;
      else if (ev.event === 'end') return;
      else if (ev.event === 'error') throw errorFromStream(ev.data);
    }
  }

  // routes
  listAllRoutes(): Promise<RouteView[]> {
    return this.json('GET', '/routes');
  }
  listRoutes(app: string): Promise<RouteView[]> {
    return this.json('GET', `/apps/${e(app)}/routes`);
  }
  createRoute(app: string, input: CreateRouteInput): Promise<RouteView> {
    return this.json('POST', `/apps/${e(app)}/routes`, { body: input });
  }
  /** `id` is `http/<uuid>` or `tcp/<uuid>`. */
  getRoute(app: string, id: string): Promise<RouteView> {
    return this.json('GET', `/apps/${e(app)}/routes/${routePath(id)}`);
  }
  /** Change an HTTP route's service and options; `null` removes one. */
  updateRoute(app: string, id: string, change: UpdateHttpRouteInput): Promise<RouteView> {
    return this.json('PATCH', `/apps/${e(app)}/routes/${routePath(id)}`, { body: change });
  }
  deleteRoute(app: string, id: string): Promise<RouteView> {
    return this.json('DELETE', `/apps/${e(app)}/routes/${routePath(id)}`);
  }

  // keys
  addKey(key: string): Promise<Key> {
    return this.json('POST', '/keys', { body: { key } });
  }
  listKeys(): Promise<Key[]> {
    return this.json('GET', '/keys');
  }
  /** By id or `SHA256:` fingerprint. */
  removeKey(idOrFingerprint: string): Promise<Key> {
    return this.json('DELETE', `/keys/${e(idOrFingerprint)}`);
  }

  /** Every change, live; `lastEventId` resumes after that event. */
  async *events(options: { app?: string; lastEventId?: string; signal?: AbortSignal } = {}): AsyncGenerator<ControllerEvent> {
    yield* await this.openEvents(options);
  }

  /** The event stream, once the controller answered (it is subscribed then: no later change is missed). */
  private async openEvents(options: { app?: string; lastEventId?: string; signal?: AbortSignal }): Promise<AsyncGenerator<ControllerEvent>> {
    const headers = options.lastEventId === undefined ? undefined : { 'last-event-id': options.lastEventId };
    const sse = await openSse(this.http, 'GET', '/events', { query: { app: options.app }, ...(headers ? { headers } : {}), ...(options.signal ? { signal: options.signal } : {}) });
    return (async function* () {
      for await (const ev of sse) {
        if (ev.event === 'error') throw errorFromStream(ev.data);
        yield JSON.parse(ev.data) as ControllerEvent;
      }
    })();
  }

  async close(): Promise<void> {
    await this.http.close();
  }

  /** The cluster's backup (`GET /backup`): a tar of the store, git repos, slugs and keys, streamed. */
  async backup(options: { signal?: AbortSignal } = {}): Promise<Readable> {
    try {
      return (await this.http.stream('GET', '/backup', options.signal ? { signal: options.signal } : {})).body;
    } catch (err) {
      throw controllerError(err);
    }
  }

  /** A JSON request; a server error comes back as the controller's own error class where it has one. */
  private async json<T>(...args: Parameters<HttpJsonClient['json']>): Promise<T> {
    try {
      return await this.http.json<T>(...args);
    } catch (err) {
      throw controllerError(err);
    }
  }

  private async *sse(method: Parameters<HttpJsonClient['stream']>[0], path: string, options: Parameters<HttpJsonClient['stream']>[2]): AsyncGenerator<SseEvent> {
    yield* await openSse(this.http, method, path, options);
  }
}

function routePath(id: string): string {
  const [type, rest] = id.split('/', 2);
  return `${e(type ?? '')}/${e(rest ?? '')}`;
}
