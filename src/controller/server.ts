import { UnauthorizedError } from '../common/errors.js';
import { createApiServer, listenApi, requireKey } from '../common/http/api-server.js';
import { keyChecker } from '../common/http/key-auth.js';
import { SseWriter } from '../common/http/sse.js';
import { CloseGuard, type Closable } from '../common/lifecycle.js';
import { silentLogger, type Logger } from '../common/logger.js';
import { pinOf, type TlsCredentials } from '../common/tls/self-signed.js';
import { registerAppRoutes } from './api/apps.js';
import { registerBackup, type BackupSources } from './backup.js';
import type { ApiDeps } from './api/deps.js';
import { registerDeploymentRoutes } from './api/deployments.js';
import { registerDeployGit, type GitSourceDeployer } from './api/deploy-git.js';
import { registerEnvRoutes } from './api/env.js';
import { registerEventRoutes } from './api/events.js';
import { registerFormationRoutes } from './api/formations.js';
import { registerJobRoutes } from './api/jobs.js';
import { registerKeyRoutes } from './api/keys.js';
import { registerReleaseRoutes } from './api/releases.js';
import { registerRouteRoutes } from './api/routes.js';
import { FormationDeployer, type Deployer } from './deployer.js';
import { DeploymentManager } from './deployments.js';
import { ControllerErrorCodes, ControllerInputError, ControllerTooLargeError } from './errors.js';
import type { JobRunner } from './jobs.js';
import { MemoryStore } from './memory-store.js';
import { runUpgradeHandler } from './run-attach.js';
import { registerResourceRoutes } from './resources.js';
import type { Store } from './store.js';
import type { App } from './types.js';
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
  /** Deploys from a git URL (`POST /apps/:app/deploy-git`, Taffy). Default none: that endpoint answers 503. */
  deployGit?: GitSourceDeployer;
  /** Git host shown to clients (`ssh://git@<gitHost>/<app>.git`). Default none. */
  gitHost?: string;
  /**
   * The cluster's app domain: `<app>.<appDomain>` and the names below it are app `<app>`'s alone
   * (another app's route there is refused, so no app can take a default domain before its app
   * exists), and a route on `<appDomain>` itself or `*.<appDomain>` is refused. Default none.
   */
  appDomain?: string;
  /** Ports the cluster's own listeners hold on the router's address, with what holds each: a TCP route on one is refused. */
  reservedPorts?: Readonly<Record<number, string>>;
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
  /** What `GET /backup` holds beside the store (backup.ts). Default: the store only. */
  backup?: BackupSources;
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
  const deps: ApiDeps = {
    store,
    jobs,
    deployments,
    app: (ref) => store.getApp(ref),
    checkEnvSize,
    sse: (_request, reply) => {
      reply.hijack();
      const writer = new SseWriter(reply.raw, { keepAliveMs });
      streams.add(writer);
      void writer.closed.then(() => streams.delete(writer));
      return writer;
    },
    gitHost: options.gitHost ?? null,
    appDomain: options.appDomain ?? null,
    reservedPorts: options.reservedPorts ?? {},
    maxScale: options.maxScale ?? CONTROLLER_DEFAULTS.maxScale,
    ...(options.onAppDeleted ? { onAppDeleted: options.onAppDeleted } : {}),
  };
  // One line per resource group (api/<group>.ts).
  registerAppRoutes(api, deps);
  registerReleaseRoutes(api, deps);
  registerDeploymentRoutes(api, deps);
  registerEnvRoutes(api, deps);
  registerFormationRoutes(api, deps);
  registerJobRoutes(api, deps);
  registerRouteRoutes(api, deps);
  registerKeyRoutes(api, deps);
  registerEventRoutes(api, deps);
  registerDeployGit(api, { store, deployer: options.deployGit, sse: deps.sse });
  registerResourceRoutes(api, deps);
  registerBackup(api, { store, ...(options.backup ? { sources: options.backup } : {}), logger });

  const guard = new CloseGuard('controller');
  const address = await listenApi(api, options.host ?? CONTROLLER_DEFAULTS.host, options.port ?? CONTROLLER_DEFAULTS.port);
  where.url = `${options.tls ? 'https' : 'http'}://${address}`;
  if (options.tls) logger.info('listening', { url: where.url, pin });
  else logger.warn('serving plain HTTP: the cluster key and apps\' env cross the network in clear', { url: where.url });
  const close = () =>
    guard.close(async () => {
      for (const s of streams) s.end();
      for (const s of upgraded) s.destroy();
      // In-flight deployments are aborted (rolled back) at once, not after the API has drained:
      // one that finished meanwhile switched the app to a release its caller was told failed.
      await Promise.all([deployments.close(), api.close()]);
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

