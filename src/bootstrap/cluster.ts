/**
 * The whole cluster in one process: discovery, host agent(s), scheduler, shelf, controller, router
 * and git receiver, wired together so that `git push` deploys.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { componentKey } from '../common/http/key-auth.js';
import type { TlsCredentials } from '../common/tls/self-signed.js';
import type { Logger } from '../common/logger.js';
import { silentLogger } from '../common/logger.js';
import { SqliteStore } from '../controller/sqlite-store.js';
import type { Store } from '../controller/store.js';
import { createDiscovery, type DiscoveryConfig } from '../discovery/create.js';
import { startHostAgent, type HostAgentHandle } from '../host/start.js';
import { createRuntime } from '../host/create.js';
import type { Runtime } from '../host/runtime.js';
import { TERMINAL_STATES } from '../host/types.js';
import { makeTempDataDir, reapAbandonedClusters } from './abandoned-clusters.js';
import { CloseStack } from './close-stack.js';
import { BootstrapInputError } from './errors.js';
import { checkRestoreFinished, restoreDataDir } from './backup-restore.js';
import { portsBesideRouter } from './router-process.js';
import { checkStoreFile, loadOrCreateClusterId, loadOrCreateControllerKey, lockDataDir, makeDataDirPrivate, STORE_FILE } from './state-files.js';
import { checkPorts, chooseRuntime, launchPlatform, planPlatform, PLATFORM_DEFAULTS, type BootstrapStep, type BuildNetwork, type ClusterRuntime, type Platform, type PlatformAcmeOptions, type PlatformAccessLogOptions } from './platform.js';

export type { BuildNetwork, ClusterRuntime } from './platform.js';

export const CLUSTER_DEFAULTS = Object.freeze({
  ...PLATFORM_DEFAULTS,
  /** Time a job gets between SIGTERM and SIGKILL, in ms. */
  stopGraceMs: 3_000,
});

export interface ClusterOptions {
  /**
   * Where the controller's state (`controller.sqlite`), shelf blobs, git repositories, the SSH host
   * key, the controller key, the cluster id and job dirs live. A cluster started again on the same
   * data dir has all of it back. Default: a temp dir removed on close.
   */
  dataDir?: string;
  /** Address every service listens on. Default {@link CLUSTER_DEFAULTS}.host. */
  host?: string;
  /** Ports (0 picks a free one). Defaults: controller 8081, router 8080, git 2222, shelf 8082. */
  ports?: { controller?: number; router?: number; routerHttps?: number; git?: number; shelf?: number };
  /**
   * Advertised addresses of the host agents started in this process, one agent each. Default
   * `[host]`. `[]` starts none: host agents elsewhere join through a shared (etcd) discovery.
   */
  hostAddrs?: string[];
  /** The controller's store (e.g. an `EtcdStore`); the caller owns and closes it. Default: a `SqliteStore` in `<dataDir>/controller.sqlite`, owned by the cluster. */
  store?: Store;
  /** Default `{ backend: 'memory' }`. */
  discovery?: DiscoveryConfig;
  /** `auto` (default): Docker when the engine answers and the runtime image can be ensured, else processes. */
  runtime?: ClusterRuntime;
  /**
   * Image builds and Docker jobs run in; it must exist in the engine. Default: the stack image
   * (`flynn-ts/stack:latest`, `npm run images`) when it is built, else the slim runtime image.
   */
  image?: string;
  /** Network of build containers: `bridge` (default), `host`, or `none` for isolated builds. */
  buildNetwork?: BuildNetwork;
  /** Save Dockerfile apps' images into shelf for hosts with an engine of their own (`startPlatform`'s). Default: true when `hostAddrs` is `[]` (every host joins from elsewhere), else false. */
  shipImages?: boolean;
  /** Extra environment of every build, e.g. `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY` behind a proxy. */
  buildEnv?: Record<string, string>;
  /** Host CA bundle mounted read-only into builds and Docker jobs; skipped when missing, none with `null`. Default {@link CLUSTER_DEFAULTS}.caBundle. */
  caBundle?: string | null;
  /** Extra labels on every container the cluster creates (tests label theirs). */
  labels?: Record<string, string>;
  /** Cluster key (controller auth). Default: the one kept in `<dataDir>/controller-key` (mode 0600), generated the first time. */
  key?: string;
  /**
   * Whether `close()` stops the apps' jobs and removes their containers (default true). False: only
   * the platform stops; Docker containers keep running and a cluster started again on the same data
   * dir adopts them (process jobs cannot outlive the process that started them: they stop and are
   * started again).
   */
  stopAppsOnClose?: boolean;
  /**
   * Run the router as a detached process that keeps serving while the platform is down (a restart
   * is then no outage of the apps); the next start on the data dir re-attaches to it. It stops with
   * `close()` unless `stopAppsOnClose` is false. Needs `dataDir`. Default false: the router runs in this process.
   */
  detachedRouter?: boolean;
  /** The router's data plane: `node` (default, in the router's process) or `haproxy` (HAProxy ≥ 2.6 driven live; docs/router.md#engines). */
  routerEngine?: 'node' | 'haproxy';
  /** The router's access log (see `PlatformOptions.routerAccessLog`; default file `<dataDir>/router-access.log`, stdout without a `dataDir`). Off unless given. */
  routerAccessLog?: PlatformAccessLogOptions;
  /** The router's Prometheus metrics listener (see `PlatformOptions.routerMetrics`). Off unless given. */
  routerMetrics?: { host?: string; port: number };
  /**
   * A `flynn cluster backup` tar to start from: its files go into `dataDir` (which must be fresh)
   * and its store entries into the store, so the apps come back as they were (a new cluster id).
   */
  fromBackup?: string;
  /** The controller's certificate and key (PEM). Default: self-signed, made once and kept in the data dir (see `PlatformOptions.tls`). */
  tls?: TlsCredentials;
  /** Serve the controller over plain HTTP (warned). Default false. */
  insecureHttp?: boolean;
  /** Let Taffy fetch `file://` URLs (see `PlatformOptions.allowFileGitUrls`). Default: when `host` is loopback. */
  allowFileGitUrls?: boolean;
  /** Default {@link CLUSTER_DEFAULTS}.domain. */
  domain?: string;
  /** The ACME client of routes with `acme` (see `PlatformOptions.acme`). Default: Let's Encrypt production; `false`: none. */
  acme?: PlatformAcmeOptions | false;
  /** Default {@link CLUSTER_DEFAULTS}.stopGraceMs. */
  stopGraceMs?: number;
  /** Default silent. */
  logger?: Logger;
  /** Progress lines while starting (e.g. building the runtime image). */
  onProgress?: (line: string) => void;
  /** Each part as it comes up: `data-dir`, `hosts`, `store`, then the platform's steps (`build`, `shelf`, `scheduler`, `router`, `git`, `controller`). */
  onStep?: (step: BootstrapStep) => void;
}

/** A started cluster: the platform (layer 1) plus its own host agents. */
export interface Cluster extends Platform {
  /** Where jobs and builds run. */
  readonly runtime: 'docker' | 'process';
  readonly hosts: readonly HostAgentHandle[];
  /** Stop everything in reverse order of start, the apps' jobs too unless `stopAppsOnClose` is false. Idempotent. */
  close(): Promise<void>;
}

/**
 * Start a one-process cluster. Everything listens on `host` (127.0.0.1 by default).
 * @throws {BootstrapPortInUseError} when a fixed port is taken (checked before anything starts, and
 *   again as each component listens); nothing started is left running.
 */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const host = options.host ?? CLUSTER_DEFAULTS.host;
  const hostAddrs = options.hostAddrs ?? [host];
  if (!Array.isArray(hostAddrs)) throw new BootstrapInputError('hostAddrs must be a list of addresses', 'hostAddrs');
  // A detached router outlives the cluster's process and is found again through the data dir; a
  // temp data dir is removed on close, and nothing would find a router a killed run left.
  if (options.detachedRouter === true && options.dataDir === undefined) {
    throw new BootstrapInputError('detachedRouter needs a dataDir: a router process that outlives the cluster is found again through it (a temp data dir is removed on close)', 'detachedRouter');
  }
  const logger = options.logger ?? silentLogger;
  const progress = options.onProgress ?? (() => {});
  const labels = { ...options.labels };
  const stopGraceMs = options.stopGraceMs ?? CLUSTER_DEFAULTS.stopGraceMs;
  // Checked before anything starts; the data dir is the cluster's (the platform shares it).
  const plan = planPlatform({
    host,
    readyHosts: hostAddrs.length,
    labels,
    logger,
    onProgress: progress,
    ...(options.onStep !== undefined ? { onStep: options.onStep } : {}),
    ...(options.ports !== undefined ? { ports: options.ports } : {}),
    ...(options.runtime !== undefined ? { build: options.runtime } : {}),
    ...(options.image !== undefined ? { image: options.image } : {}),
    ...(options.buildNetwork !== undefined ? { buildNetwork: options.buildNetwork } : {}),
    shipImages: options.shipImages ?? hostAddrs.length === 0,
    ...(options.buildEnv !== undefined ? { buildEnv: options.buildEnv } : {}),
    ...(options.caBundle !== undefined ? { caBundle: options.caBundle } : {}),
    ...(options.tls !== undefined ? { tls: options.tls } : {}),
    ...(options.insecureHttp !== undefined ? { insecureHttp: options.insecureHttp } : {}),
    ...(options.allowFileGitUrls !== undefined ? { allowFileGitUrls: options.allowFileGitUrls } : {}),
    ...(options.domain !== undefined ? { domain: options.domain } : {}),
    ...(options.acme !== undefined ? { acme: options.acme } : {}),
    detachedRouter: options.detachedRouter === true,
    ...(options.routerEngine !== undefined ? { routerEngine: options.routerEngine } : {}),
    ...(options.routerAccessLog !== undefined ? { routerAccessLog: options.routerAccessLog } : {}),
    ...(options.routerMetrics !== undefined ? { routerMetrics: options.routerMetrics } : {}),
    ...(options.dataDir !== undefined ? { dataDir: options.dataDir } : {}),
    keepRouterOnClose: options.stopAppsOnClose === false,
  });

  // Everything started so far, closed in reverse order on failure or close().
  const closers = new CloseStack(logger);
  const ownsDataDir = options.dataDir === undefined;
  // What an earlier temp-dir cluster killed before it could close left behind (abandoned-clusters.ts).
  await reapAbandonedClusters(logger);
  const dataDir = options.dataDir ?? (await makeTempDataDir());
  if (ownsDataDir) closers.push(() => rm(dataDir, { recursive: true, force: true }));

  try {
    await makeDataDirPrivate(dataDir);
    closers.push(await lockDataDir(dataDir));
    // Before the ids and keys are read: the backup's are the ones to use.
    const restore = options.fromBackup === undefined ? undefined : await restoreDataDir(options.fromBackup, dataDir);
    if (!restore) await checkRestoreFinished(dataDir);
    // The store before the cluster id: a data dir with an id but no store lost its store.
    let store = options.store;
    if (!store) {
      await checkStoreFile(dataDir);
      const owned = new SqliteStore({ path: join(dataDir, STORE_FILE) });
      closers.push(() => owned.close());
      store = owned;
    }
    plan.onStep({ step: 'store', message: options.store ? 'given' : STORE_FILE });
    const id = await loadOrCreateClusterId(dataDir);
    const key = options.key ?? (await loadOrCreateControllerKey(dataDir));
    plan.onStep({ step: 'data-dir', message: dataDir });
    // A busy port fails the start before the runtime image is built or any host agent starts.
    await checkPorts(plan.host, plan.detachedRouter ? await portsBesideRouter(dataDir, plan.ports) : plan.ports);
    const choice = await chooseRuntime(plan.build, progress, plan.image);

    const discovery = createDiscovery(options.discovery ?? { backend: 'memory' }, { logger });
    closers.push(() => discovery.close());

    // Jobs run in the builds' image (the stack's run variant is its build variant), with its $STACK.
    const runtime: Runtime =
      choice.runtime === 'docker'
        ? createRuntime({ backend: 'docker', labels, logger, caBundle: plan.caBundle, ...(choice.image === undefined ? {} : { image: choice.image }), ...(choice.stack === undefined ? {} : { stack: choice.stack }) })
        : createRuntime({ backend: 'process', baseDir: join(dataDir, 'jobs'), logger });
    closers.push(() => runtime.close());
    // Without local hosts the runtime choice only decides where builds run.
    const hosts: HostAgentHandle[] = [];
    for (const [i, addr] of hostAddrs.entries()) {
      const agent = await startHostAgent({ id: `host${i + 1}-${id}`, advertiseAddr: addr, discovery, runtime, stopGraceMs, artifactsDir: join(dataDir, 'artifacts'), volumesDir: join(dataDir, 'volumes'), stateDir: join(dataDir, 'host-state'), key: componentKey(key, 'host'), logger });
      hosts.push(agent);
      closers.push(async () => {
        if (options.stopAppsOnClose === false) return agent.close();
        // The cluster's jobs go with it (a Docker runtime would otherwise leave them running).
        const live = agent.agent.listJobs().filter((j) => !TERMINAL_STATES.has(j.state));
        await Promise.all(live.map((j) => agent.agent.stopJob(j.id, { graceMs: Math.min(stopGraceMs, 1000) }).catch(() => {})));
        const ids = agent.agent.listJobs().map((j) => j.id);
        await agent.close();
        await Promise.all(ids.map((id) => runtime.remove(agent.agent.id, id).catch(() => {})));
      });
    }

    plan.onStep({ step: 'hosts', message: hosts.map((h) => h.agent.id).join(', ') || 'none here' });
    const platform = await launchPlatform({ ...plan, key, store, discovery, dataDir, ...(restore ? { restore } : {}) }, choice);
    closers.push(() => platform.close());

    const cluster: Cluster = {
      ...platform,
      hosts,
      close: () => closers.close(),
      [Symbol.asyncDispose]: () => cluster.close(),
    };
    return cluster;
  } catch (err) {
    await closers.close();
    throw err;
  }
}

