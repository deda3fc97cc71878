import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { UnauthorizedError } from '../common/errors.js';
import { createApiServer, listenApi, requireKey } from '../common/http/api-server.js';
import { keyChecker } from '../common/http/key-auth.js';
import { SseWriter } from '../common/http/sse.js';
import { CloseGuard, type Closable } from '../common/lifecycle.js';
import { silentLogger, type Logger } from '../common/logger.js';
import { pinOf, type TlsCredentials } from '../common/tls/self-signed.js';
import { FormationDeployer, type Deployer } from './deployer.js';
import { DeploymentManager } from './deployments.js';
import { ControllerErrorCodes, ControllerInputError, ControllerTooLargeError, ObjectNotFoundError, ProcessTypeNotFoundError } from './errors.js';
import type { JobRunner } from './jobs.js';
import { MemoryStore } from './memory-store.js';
import { appScale } from './scale.js';
import * as S from './schemas.js';
import type { Store } from './store.js';
import { routeView } from './route-view.js';
import type { App, CreateAppInput, CreateArtifactInput, CreateReleaseInput, CreateRouteInput, EnvChange, Release, ReleaseChange, RollbackChange, Route, RunJobInput, UpdateAppInput, UpdateHttpRouteInput } from './types.js';
import { validateAppName, validateConfigKey, validateDomain, validateEnvKey, validatePath, validateImageId, validatePort, validateService, validateUrl } from './validate.js';
import { resolveJobId } from './job-ref.js';
import { oneOffSpec, runUpgradeHandler } from './run-attach.js';
import type { Duplex } from 'node:stream';

export interface ControllerOptions {
  /** The cluster key: Basic-auth password or Bearer token on every request. Required, non-empty. */
  key: string;
  /** Where everything is kept. Default a fresh {@link MemoryStore} (closed with the controller). */
  store?: Store;
  /** The grid: jobs list/kill/run/logs (an adapter over the scheduler and host agents). */
  jobs: JobRunner;
  /** Brings new releases up. Default a {@link FormationDeployer} over `jobs`. */
  deployer?: Deployer;
  /** Called after an app is deleted, to remove what lives outside the store (slugs, git repo). */
  onAppDeleted?: (app: App) => Promise<void>;
  /** Git host shown to clients (`ssh://git@<gitHost>/<app>.git`). Default none. */
  gitHost?: string;
  /**
   * Serve HTTPS with this certificate and key (PEM), e.g. from `loadOrCreateSelfSigned`. Without
   * it the API is plain HTTP (keys and env in clear on the wire) and a warning is logged; the
   * platform always gives one unless asked for plain HTTP.
   */
  tls?: TlsCredentials;
  /** Listen address. Default `127.0.0.1`. */
  host?: string;
  /** Listen port. Default 0 (any free port). */
  port?: number;
  logger?: Logger;
  /**
   * Largest JSON body, in bytes (413 beyond). Default 512 KiB: with the event that repeats it, a
   * write stays well under what etcd commits in one request (1.5 MiB by default).
   */
  bodyLimit?: number;
  /** Largest config var value, in bytes (413 beyond). Default 64 KiB. */
  maxEnvValueBytes?: number;
  /** Largest env of a release or job, names and values together, in bytes (413 beyond). Default 256 KiB. */
  maxEnvBytes?: number;
  /** Most jobs of one process type an app may be scaled to (400 beyond). Default 100. */
  maxScale?: number;
  /** SSE keep-alive comment interval, in ms. Default 15 000. */
  keepAliveMs?: number;
}

export const CONTROLLER_DEFAULTS = Object.freeze({ host: '127.0.0.1', port: 0, bodyLimit: 512 * 1024, maxEnvValueBytes: 64 * 1024, maxEnvBytes: 256 * 1024, maxScale: 100, keepAliveMs: 15_000 });

export interface ControllerHandle extends Closable {
  /** `https://host:port` (`http://` without `tls`) */
  readonly url: string;
  /** Base64 SHA-256 of the certificate served (`flynn server-add -p`), null over plain HTTP. */
  readonly pin: string | null;
  readonly store: Store;
  /** Resolves when the app's in-flight deployment is finished (tests, scripts). */
  deploymentSettled(app: string): Promise<void>;
}

type Req<P = { app: string }, B = unknown, Q = unknown> = FastifyRequest<{ Params: P; Body: B; Querystring: Q }>;

/** Start the controller HTTP API. */
export async function startController(options: ControllerOptions): Promise<ControllerHandle> {
  if (typeof options.key !== 'string' || options.key.length === 0) throw new ControllerInputError('key', 'the controller needs a non-empty cluster key');
  const logger = (options.logger ?? silentLogger).child({ component: 'controller' });
  const ownsStore = options.store === undefined;
  const store = options.store ?? new MemoryStore();
  const jobs = options.jobs;
  const deployer = options.deployer ?? new FormationDeployer({ jobs });
  const deployments = new DeploymentManager(store, deployer, logger);
  const recovered = await deployments.recoverInterrupted();
  if (recovered.finished + recovered.rolledBack > 0) logger.warn('recovered deployments interrupted by a restart', { ...recovered });
  const keepAliveMs = options.keepAliveMs ?? CONTROLLER_DEFAULTS.keepAliveMs;
  const streams = new Set<SseWriter>();
  const maxValue = options.maxEnvValueBytes ?? CONTROLLER_DEFAULTS.maxEnvValueBytes;
  const maxEnv = options.maxEnvBytes ?? CONTROLLER_DEFAULTS.maxEnvBytes;
  /** 413 for an env over the size limits, naming the variable or the total. */
  const checkEnvSize = (env: Record<string, string>, field: string) => {
    let total = 0;
    for (const [k, v] of Object.entries(env)) {
      const bytes = Buffer.byteLength(v);
      if (bytes > maxValue) throw new ControllerTooLargeError(`the value of ${k}`, bytes, maxValue, `${field}.${k}`);
      total += Buffer.byteLength(k) + bytes;
    }
    if (total > maxEnv) throw new ControllerTooLargeError('the env (names and values)', total, maxEnv, field);
  };

  const pin = options.tls ? pinOf(options.tls.cert) : null;
  const where: { url?: string } = {};
  const api = createApiServer({
    logger,
    bodyLimit: options.bodyLimit ?? CONTROLLER_DEFAULTS.bodyLimit,
    ...(options.tls ? { tls: options.tls, httpsHint: () => `this controller speaks HTTPS only: use ${where.url ?? 'https://'} and trust its certificate (flynn server-add -p ${pin} NAME ${where.url ?? 'URL'} KEY)` } : {}),
  });
  api.setSchemaErrorFormatter((errors, where) => schemaError(errors, where));
  requireKey(api, options.key, {
    scheme: 'Basic',
    realm: 'flynn-controller',
    refuse: (check) => new UnauthorizedError(ControllerErrorCodes.UNAUTHORIZED, check === 'missing' ? 'missing cluster key (Authorization: Bearer <key> or Basic auth password)' : 'wrong cluster key'),
  });

  const app = (ref: string) => store.getApp(ref);
  // Interactive runs (run-attach.ts): an HTTP Upgrade, outside fastify's routing.
  const upgraded = new Set<Duplex>();
  api.server.on(
    'upgrade',
    runUpgradeHandler({
      store,
      jobs,
      checkKey: keyChecker(options.key),
      checkEnv: checkEnvSize,
      track: (socket) => {
        upgraded.add(socket);
        socket.once('close', () => upgraded.delete(socket));
      },
    }),
  );
  const sse = (_request: FastifyRequest, reply: FastifyReply) => {
    reply.hijack();
    const writer = new SseWriter(reply.raw, { keepAliveMs });
    streams.add(writer);
    void writer.closed.then(() => streams.delete(writer));
    return writer;
  };
  const deployRelease = async (a: App, release: Release): Promise<ReleaseChange> => ({ release, deployment: await deployments.start(a, release) });

  routes(api);

  function routes(r: FastifyInstance): void {
    r.get('/status', async () => ({ status: 'ok', gitHost: options.gitHost ?? null }));

    // apps
    r.post('/apps', { schema: { body: S.createAppBody } }, async (req: Req<unknown, CreateAppInput>, reply) => {
      validateAppName(req.body.name);
      reply.status(201);
      return store.createApp(req.body);
    });
    r.get('/apps', async () => store.listApps());
    r.get('/apps/:app', { schema: { params: S.appParams } }, async (req: Req) => app(req.params.app));
    r.patch('/apps/:app', { schema: { params: S.appParams, body: S.updateAppBody } }, async (req: Req<{ app: string }, UpdateAppInput>) => store.updateApp(req.params.app, req.body));
    r.delete('/apps/:app', { schema: { params: S.appParams } }, async (req: Req) => {
      const a = await app(req.params.app);
      await deployments.abort(a.id, `app ${a.name} is being deleted`);
      const deleted = await store.deleteApp(a.id);
      await options.onAppDeleted?.(deleted);
      return deleted;
    });

    // artifacts
    r.post('/artifacts', { schema: { body: S.createArtifactBody } }, async (req: Req<unknown, CreateArtifactInput>, reply) => {
      if (req.body.type === 'docker') validateImageId(req.body.url);
      else validateUrl(req.body.url);
      if (req.body.archiveUrl !== undefined) validateUrl(req.body.archiveUrl, 'archiveUrl');
      reply.status(201);
      return store.createArtifact(req.body);
    });
    r.get('/artifacts', async () => store.listArtifacts());
    r.get('/artifacts/:id', async (req: Req<{ id: string }>) => store.getArtifact(req.params.id));

    // releases
    r.post('/apps/:app/releases', { schema: { body: S.createReleaseBody } }, async (req: Req<{ app: string }, CreateReleaseInput>, reply) => {
      const a = await app(req.params.app);
      // A platform-set name is refused unless it is carried over unchanged from the current release (set before it was refused).
      const carried = a.releaseId === null ? {} : (await store.getRelease(a.id, a.releaseId)).env;
      for (const [k, v] of Object.entries(req.body.env ?? {})) {
        if (carried[k] === v) validateEnvKey(k);
        else validateConfigKey(k);
      }
      const artifactId = req.body.artifactId ?? null;
      let processes = req.body.processes;
      if (processes === undefined) {
        if (artifactId === null) processes = {};
        else processes = (await store.getArtifact(artifactId).catch(() => { throw new ControllerInputError('artifactId', `no artifact ${JSON.stringify(artifactId)}`); })).processes;
      }
      checkEnvSize(req.body.env ?? {}, 'env');
      reply.status(201);
      return store.createRelease(a.id, { artifactId, env: req.body.env ?? {}, processes });
    });
    r.get('/apps/:app/releases', async (req: Req) => store.listReleases(req.params.app));
    r.get('/apps/:app/releases/:release', async (req: Req<{ app: string; release: string }>) => store.getRelease(req.params.app, req.params.release));
    r.get('/apps/:app/release', async (req: Req) => {
      const a = await app(req.params.app);
      if (a.releaseId === null) throw new ObjectNotFoundError('current release of app', a.name);
      return store.getRelease(a.id, a.releaseId);
    });

    // deployments
    r.post('/apps/:app/deploy', { schema: { body: S.deployBody } }, async (req: Req<{ app: string }, { release: string; strategy?: App['strategy'] }>, reply) => {
      const a = await app(req.params.app);
      const release = await store.getRelease(a.id, req.body.release);
      reply.status(201);
      return deployments.start(a, release, req.body.strategy);
    });
    r.get('/apps/:app/deployments', async (req: Req) => store.listDeployments(req.params.app));
    r.get('/apps/:app/deployments/:id', async (req: Req<{ app: string; id: string }>) => store.getDeployment(req.params.app, req.params.id));

    r.post('/apps/:app/rollback', { schema: { body: S.rollbackBody } }, async (req: Req<{ app: string }, { release?: string }>, reply) => {
      const a = await app(req.params.app);
      let target: Release;
      if (req.body.release !== undefined) {
        target = await store.getRelease(a.id, req.body.release).catch(() => { throw new ControllerInputError('release', `app ${a.name} has no release ${JSON.stringify(req.body.release)}`); });
      } else {
        const all = await store.listReleases(a.id);
        const current = all.find((x) => x.id === a.releaseId);
        const earlier = all.filter((x) => current === undefined || x.version < current.version);
        const prev = earlier[earlier.length - 1];
        if (!prev) throw new ControllerInputError('release', `app ${a.name} has no earlier release to roll back to`);
        target = prev;
      }
      const release = await store.createRelease(a.id, { artifactId: target.artifactId, env: target.env, processes: target.processes });
      reply.status(201);
      const change: RollbackChange = { ...(await deployRelease(a, release)), target };
      return change;
    });

    // env
    r.get('/apps/:app/env', async (req: Req) => {
      const a = await app(req.params.app);
      return a.releaseId === null ? {} : (await store.getRelease(a.id, a.releaseId)).env;
    });
    r.patch('/apps/:app/env', { schema: { body: S.envBody } }, async (req: Req<{ app: string }, { set?: Record<string, string>; unset?: string[] }>, reply) => {
      const a = await app(req.params.app);
      const set = req.body.set ?? {};
      const unset = req.body.unset ?? [];
      for (const k of Object.keys(set)) validateConfigKey(k, 'set');
      for (const k of unset) validateEnvKey(k, 'unset');
      if (Object.keys(set).length === 0 && unset.length === 0) throw new ControllerInputError('set', 'nothing to change: give set and/or unset');
      const current = a.releaseId === null ? undefined : await store.getRelease(a.id, a.releaseId);
      const before: Record<string, string> = current?.env ?? {};
      const unchanged = [...Object.keys(set).filter((k) => before[k] === set[k] && !unset.includes(k)), ...unset.filter((k) => before[k] === undefined && set[k] === undefined)];
      const env = { ...before, ...set };
      for (const k of unset) delete env[k];
      checkEnvSize(env, 'set');
      // A change that changes nothing is no new release (like `heroku config:unset` of a missing var).
      const same = Object.keys(env).length === Object.keys(before).length && Object.entries(env).every(([k, v]) => before[k] === v);
      if (same) {
        const answer: EnvChange = { release: current ?? null, deployment: null, unchanged };
        return answer;
      }
      const release = await store.createRelease(a.id, { artifactId: current?.artifactId ?? null, env, processes: current?.processes ?? {} });
      reply.status(201);
      const change: EnvChange = { ...(await deployRelease(a, release)), unchanged };
      return change;
    });

    // formations
    r.get('/formations', async () => store.listFormations());
    r.get('/apps/:app/formations', async (req: Req) => store.listFormations(req.params.app));
    r.get('/apps/:app/formations/:release', async (req: Req<{ app: string; release: string }>) => {
      const a = await app(req.params.app);
      const release = await store.getRelease(a.id, req.params.release);
      return (await store.getFormation(a.id, release.id)) ?? { appId: a.id, releaseId: release.id, processes: {}, updatedAt: release.createdAt };
    });
    r.put('/apps/:app/formations/:release', { schema: { body: S.formationBody } }, async (req: Req<{ app: string; release: string }, { processes: Record<string, number> }>) => {
      const a = await app(req.params.app);
      const release = await store.getRelease(a.id, req.params.release);
      return scale(a, release, req.body.processes);
    });
    r.put('/apps/:app/scale', { schema: { body: S.formationBody } }, async (req: Req<{ app: string }, { processes: Record<string, number> }>) => {
      const a = await app(req.params.app);
      if (a.releaseId === null) throw new ControllerInputError('app', `app ${a.name} has no release to scale yet: deploy first`);
      return scale(a, await store.getRelease(a.id, a.releaseId), req.body.processes);
    });
    /** Set counts of `release`; for the running release they are also the app's scale, kept across releases (scale.ts). */
    async function scale(a: App, release: Release, processes: Record<string, number>) {
      const maxScale = options.maxScale ?? CONTROLLER_DEFAULTS.maxScale;
      for (const [type, n] of Object.entries(processes)) {
        if (n > maxScale) throw new ControllerInputError(`processes.${type}`, `${type}=${n} is over the limit of ${maxScale} jobs per process type`);
        if (!Object.hasOwn(release.processes, type)) throw new ProcessTypeNotFoundError({ app: a.name, version: release.version, type, types: Object.keys(release.processes) });
      }
      const existing = await store.getFormation(a.id, release.id);
      const formation = await store.putFormation(a.id, release.id, { ...existing?.processes, ...processes });
      if (release.id === a.releaseId) await store.setAppScale(a.id, { ...appScale(a, existing), ...processes });
      return formation;
    }

    // jobs
    r.get('/apps/:app/jobs', async (req: Req) => jobs.listJobs((await app(req.params.app)).id));
    r.delete('/apps/:app/jobs/:job', async (req: Req<{ app: string; job: string }>, reply) => {
      const a = await app(req.params.app);
      await jobs.killJob(a.id, await resolveJobId(jobs, a.id, req.params.job));
      return reply.status(204).send();
    });
    r.post('/apps/:app/jobs', { schema: { body: S.runJobBody } }, async (req: Req<{ app: string }, RunJobInput>, reply) => {
      const abort = new AbortController();
      const job = await jobs.runJob(await oneOffSpec(store, req.params.app, req.body, checkEnvSize), { signal: abort.signal });
      if (!req.body.attach) {
        void (async () => { for await (const _ of job.output) { /* drain */ } })().catch(() => undefined);
        reply.status(201);
        return { id: job.id };
      }
      const writer = sse(req, reply);
      void writer.closed.then(() => abort.abort(new Error('client detached')));
      let n = 0;
      writer.sendJson('job', { id: job.id }, String(n++));
      try {
        for await (const out of job.output) {
          if (writer.isClosed) break;
          if (out.kind === 'output') writer.sendJson('output', { stream: out.stream, data: out.data }, String(n++));
          else writer.sendJson('exit', { status: out.status }, String(n++));
        }
      } catch (err) {
        writer.sendJson('error', { message: (err as Error).message }, String(n++));
      }
      writer.end();
      return reply;
    });

    // logs
    r.get('/apps/:app/log', { schema: { querystring: S.logQuery } }, async (req: Req<{ app: string }, unknown, { job?: string; type?: string; follow?: string; lines?: string }>, reply) => {
      const a = await app(req.params.app);
      const abort = new AbortController();
      const follow = req.query.follow === '1' || req.query.follow === 'true';
      const jobId = req.query.job ? await resolveJobId(jobs, a.id, req.query.job) : undefined;
      const lines = await jobs.logs(a.id, { ...(jobId !== undefined ? { jobId } : {}), ...(req.query.type ? { type: req.query.type } : {}), ...(req.query.lines ? { lines: Number(req.query.lines) } : {}), follow, signal: abort.signal });
      const writer = sse(req, reply);
      void writer.closed.then(() => abort.abort(new Error('client went away')));
      let n = 0;
      try {
        for await (const line of lines) {
          if (writer.isClosed) break;
          writer.sendJson('log', line, String(n++));
        }
        writer.sendJson('end', {}, String(n++));
      } catch (err) {
        if (!abort.signal.aborted) writer.sendJson('error', { message: (err as Error).message }, String(n++));
      }
      writer.end();
      return reply;
    });

    // routes
    r.get('/routes', async () => (await store.listRoutes()).map(routeView));
    r.get('/apps/:app/routes', async (req: Req) => (await store.listRoutes(req.params.app)).map(routeView));
    r.post('/apps/:app/routes', { schema: { body: S.createRouteBody } }, async (req: Req<{ app: string }, CreateRouteInput & Record<string, unknown>>, reply) => {
      const body = req.body;
      validateService(body.service);
      let input: CreateRouteInput;
      if (body.type === 'http') {
        if (typeof body.domain !== 'string') throw new ControllerInputError('domain', 'an http route needs a domain');
        if (body.port !== undefined) throw new ControllerInputError('port', 'an http route has no port');
        if (body.healthCheck) validatePath(body.healthCheck.path, 'healthCheck.path');
        const { timeouts, healthCheck, redirectHttps, tls } = body;
        input = {
          type: 'http',
          domain: validateDomain(body.domain.toLowerCase()),
          path: validatePath(body.path ?? '/'),
          service: body.service,
          sticky: body.sticky ?? false,
          ...(tls ? { tls } : {}),
          ...(timeouts ? { timeouts } : {}),
          ...(healthCheck ? { healthCheck } : {}),
          ...(redirectHttps ? { redirectHttps } : {}),
        };
      } else {
        if (typeof body.port !== 'number') throw new ControllerInputError('port', 'a tcp route needs a port');
        for (const f of ['domain', 'path', 'sticky', 'tls', 'timeouts', 'healthCheck', 'redirectHttps']) if (body[f] !== undefined) throw new ControllerInputError(f, `a tcp route has no ${f}`);
        input = { type: 'tcp', port: validatePort(body.port), service: body.service };
      }
      reply.status(201);
      return routeView(await store.createRoute(req.params.app, input));
    });
    // A route id is `<type>/<uuid>`; a malformed one (no `/`) arrives as `<it>/` and is named as given.
    const routeId = (p: { type: string; id: string }) => (p.id === '' ? p.type : `${p.type}/${p.id}`);
    r.get('/apps/:app/routes/:type/:id', async (req: Req<{ app: string; type: string; id: string }>) => routeView(await store.getRoute(req.params.app, routeId(req.params))));
    r.patch('/apps/:app/routes/http/:id', { schema: { body: S.updateHttpRouteBody } }, async (req: Req<{ app: string; id: string }, UpdateHttpRouteInput>) => {
      const body = req.body;
      if (body.service !== undefined) validateService(body.service);
      if (body.healthCheck) validatePath(body.healthCheck.path, 'healthCheck.path');
      return routeView(await store.updateRoute(req.params.app, `http/${req.params.id}`, body));
    });
    r.delete('/apps/:app/routes/:type/:id', async (req: Req<{ app: string; type: string; id: string }>) => routeView(await store.deleteRoute(req.params.app, routeId(req.params))));

    // keys
    r.get('/keys', async () => store.listKeys());
    r.post('/keys', { schema: { body: S.addKeyBody } }, async (req: Req<unknown, { key: string }>, reply) => {
      reply.status(201);
      return store.addKey(req.body.key);
    });
    r.delete('/keys/:key', async (req: Req<{ key: string }>) => store.removeKey(req.params.key));

    // events
    r.get('/events', { schema: { querystring: S.eventsQuery } }, async (req: Req<unknown, unknown, { app?: string; last_event_id?: string }>, reply) => {
      const header = req.headers['last-event-id'];
      const last = req.query.last_event_id ?? (typeof header === 'string' ? header : undefined);
      if (last !== undefined && !/^[0-9]+$/.test(last)) throw new ControllerInputError('last-event-id', 'Last-Event-Id must be a decimal event id');
      const appId = req.query.app === undefined ? undefined : (await app(req.query.app)).id;
      const abort = new AbortController();
      const events = store.watchEvents({ signal: abort.signal, ...(last !== undefined ? { afterId: last } : {}) });
      const writer = sse(req, reply);
      void writer.closed.then(() => abort.abort());
      try {
        for await (const e of events) {
          if (writer.isClosed) break;
          if (appId === undefined || e.appId === appId) writer.sendJson(`${e.object}.${e.op}`, e.object === 'route' ? { ...e, data: routeView(e.data as Route) } : e, e.id);
        }
      } catch (err) {
        writer.sendJson('error', { message: (err as Error).message });
      }
      writer.end();
      return reply;
    });
  }

  const guard = new CloseGuard('controller');
  const address = await listenApi(api, options.host ?? CONTROLLER_DEFAULTS.host, options.port ?? CONTROLLER_DEFAULTS.port);
  where.url = `${options.tls ? 'https' : 'http'}://${address}`;
  if (options.tls) logger.info('listening', { url: where.url, pin });
  else logger.warn('serving plain HTTP: the cluster key and apps\' env cross the network in clear', { url: where.url });
  const close = () =>
    guard.close(async () => {
      for (const s of streams) s.end();
      for (const s of upgraded) s.destroy();
      await api.close();
      await deployments.close();
      if (ownsStore) await store.close();
    });
  return {
    url: where.url,
    pin,
    store,
    deploymentSettled: async (ref) => deployments.settled((await store.getApp(ref)).id),
    close,
    [Symbol.asyncDispose]: close,
  };
}

interface AjvError {
  instancePath?: string;
  message?: string;
  params?: { missingProperty?: string; additionalProperty?: string; allowedValues?: unknown[] };
}

/** A schema violation as a 400 naming the field, including unknown fields (`additionalProperties`). */
function schemaError(errors: AjvError[], where: string): ControllerInputError {
  const first = errors[0] ?? {};
  const path = (first.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.');
  const extra = first.params?.additionalProperty;
  const missing = first.params?.missingProperty;
  const field = [path, missing ?? extra].filter(Boolean).join('.') || where;
  const what = missing ? 'is required' : extra ? 'is not a known field' : first.params?.allowedValues ? `must be one of ${first.params.allowedValues.join(', ')}` : (first.message ?? 'is invalid');
  return new ControllerInputError(field, `invalid ${where}: ${field} ${what}`);
}

