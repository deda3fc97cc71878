/**
 * The whole cluster in one process: discovery, host agent(s), scheduler, shelf, controller, router
 * and git receiver, wired together so that `git push` deploys.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import { UnavailableError } from '../common/errors.js';
import { sleep } from '../common/lifecycle.js';
import type { Logger } from '../common/logger.js';
import { silentLogger } from '../common/logger.js';
import { ControllerClient } from '../controller/client.js';
import { MemoryStore } from '../controller/memory-store.js';
import { startController, type ControllerHandle } from '../controller/server.js';
import type { Store } from '../controller/store.js';
import { createDiscovery, type DiscoveryConfig } from '../discovery/create.js';
import type { Discovery } from '../discovery/discovery.js';
import { loadOrCreateHostKey } from '../git/keys.js';
import { startGitReceiver, type GitPlatform, type GitReceiver } from '../git/receiver.js';
import { startHostAgent, type HostAgentHandle } from '../host/agent.js';
import { HostClient } from '../host/client.js';
import { createRuntime } from '../host/create.js';
import type { Runtime } from '../host/runtime.js';
import { ensureRuntimeImage } from '../host/runtime-image.js';
import { TERMINAL_STATES } from '../host/types.js';
import { startRouter, type Router } from '../router/router.js';
import { hostAgentConnector } from '../scheduler/host-agent-connector.js';
import { startScheduler, type Scheduler } from '../scheduler/scheduler.js';
import { createBlobStore } from '../shelf/create.js';
import { ShelfClient } from '../shelf/client.js';
import { startShelf, type Shelf } from '../shelf/server.js';
import { createBuildExecutor } from '../slug/create.js';
import { BootstrapErrorCodes, BootstrapInputError } from './errors.js';
import { StoreFormationSource } from './formation-source.js';
import { appUrl, ControllerGitPlatform } from './git-platform.js';
import { SchedulerJobRunner } from './job-runner.js';
import { StoreRouteSource } from './route-source.js';

export const CLUSTER_DEFAULTS = Object.freeze({
  /** Address every service listens on. */
  host: '127.0.0.1',
  /** Controller API port. */
  controllerPort: 8081,
  /** Router HTTP port. */
  routerPort: 8080,
  /** Git (SSH) port. */
  gitPort: 2222,
  /** Shelf (blob store) port. */
  shelfPort: 8082,
  /** Apps answer at `<app>.<domain>`. */
  domain: 'flynn.local',
  /** Time a job gets between SIGTERM and SIGKILL, in ms. */
  stopGraceMs: 3_000,
  /** Longest wait at start for the scheduler to lead with every host ready, in ms. */
  schedulerReadyMs: 15_000,
});

export type ClusterRuntime = 'auto' | 'docker' | 'process';

export interface ClusterOptions {
  /** Where shelf blobs, git repositories, the SSH host key and job dirs live. Default: a temp dir removed on close. */
  dataDir?: string;
  /** Address every service listens on. Default {@link CLUSTER_DEFAULTS}.host. */
  host?: string;
  /** Ports (0 picks a free one). Defaults: controller 8081, router 8080, git 2222, shelf 8082. */
  ports?: { controller?: number; router?: number; git?: number; shelf?: number };
  /**
   * Advertised addresses of the host agents started in this process, one agent each. Default
   * `[host]`. `[]` starts none: host agents elsewhere join through a shared (etcd) discovery.
   */
  hostAddrs?: string[];
  /** The controller's store (e.g. an `EtcdStore`); the caller owns and closes it. Default: a `MemoryStore` owned by the cluster. */
  store?: Store;
  /** Default `{ backend: 'memory' }`. */
  discovery?: DiscoveryConfig;
  /** `auto` (default): Docker when the engine answers and the runtime image can be ensured, else processes. */
  runtime?: ClusterRuntime;
  /** Extra labels on every container the cluster creates (tests label theirs). */
  labels?: Record<string, string>;
  /** Cluster key (controller auth). Default: generated. */
  key?: string;
  /** Default {@link CLUSTER_DEFAULTS}.domain. */
  domain?: string;
  /** Default {@link CLUSTER_DEFAULTS}.stopGraceMs. */
  stopGraceMs?: number;
  /** Default silent. */
  logger?: Logger;
  /** Progress lines while starting (e.g. building the runtime image). */
  onProgress?: (line: string) => void;
}

/** A started cluster. */
export interface Cluster extends AsyncDisposable {
  readonly runtime: 'docker' | 'process';
  readonly key: string;
  readonly domain: string;
  readonly dataDir: string;
  /** `http://host:port` of the controller. */
  readonly controllerUrl: string;
  /** `http://host:port` of the router's HTTP listener. */
  readonly routerUrl: string;
  readonly routerPort: number;
  /** `host:port` of the git receiver (`ssh://git@<gitHost>/<app>.git`). */
  readonly gitHost: string;
  /** SSH host key fingerprint of the git receiver (`SHA256:...`). */
  readonly gitFingerprint: string;
  readonly shelfUrl: string;
  readonly discovery: Discovery;
  readonly store: Store;
  readonly scheduler: Scheduler;
  readonly hosts: readonly HostAgentHandle[];
  /** A typed client of the controller, owned by the cluster. */
  readonly client: ControllerClient;
  /** `http://<app>.<domain>:<routerPort>`. */
  appUrl(app: string): string;
  /** Stop everything, the apps' jobs included, in reverse order of start. Idempotent. */
  close(): Promise<void>;
}

async function dockerAnswers(): Promise<boolean> {
  try {
    await new Dockerode().ping();
    return true;
  } catch {
    return false;
  }
}

/** Pick the runtime: `auto` is Docker when the engine answers and the runtime image is there or can be built. */
async function chooseRuntime(choice: ClusterRuntime, progress: (line: string) => void): Promise<'docker' | 'process'> {
  if (choice === 'process') return 'process';
  if (choice === 'docker') {
    await ensureRuntimeImage({ onProgress: progress });
    return 'docker';
  }
  if (!(await dockerAnswers())) {
    progress('Docker is not reachable: running jobs as processes');
    return 'process';
  }
  try {
    await ensureRuntimeImage({ onProgress: progress });
    return 'docker';
  } catch (err) {
    progress(`cannot ensure the runtime image (${(err as Error).message}): running jobs as processes`);
    return 'process';
  }
}

function port(value: number | undefined, fallback: number, field: string): number {
  const p = value ?? fallback;
  if (!Number.isInteger(p) || p < 0 || p > 65535) throw new BootstrapInputError(`ports.${field} must be 0-65535, got ${JSON.stringify(value)}`, `ports.${field}`);
  return p;
}

/** Start a one-process cluster. Everything listens on `host` (127.0.0.1 by default). */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const host = options.host ?? CLUSTER_DEFAULTS.host;
  const ports = {
    controller: port(options.ports?.controller, CLUSTER_DEFAULTS.controllerPort, 'controller'),
    router: port(options.ports?.router, CLUSTER_DEFAULTS.routerPort, 'router'),
    git: port(options.ports?.git, CLUSTER_DEFAULTS.gitPort, 'git'),
    shelf: port(options.ports?.shelf, CLUSTER_DEFAULTS.shelfPort, 'shelf'),
  };
  const hostAddrs = options.hostAddrs ?? [host];
  if (!Array.isArray(hostAddrs)) throw new BootstrapInputError('hostAddrs must be a list of addresses', 'hostAddrs');
  const runtimeChoice = options.runtime ?? 'auto';
  if (!['auto', 'docker', 'process'].includes(runtimeChoice)) throw new BootstrapInputError(`runtime must be auto, docker or process, got ${JSON.stringify(runtimeChoice)}`, 'runtime');
  const domain = options.domain ?? CLUSTER_DEFAULTS.domain;
  const key = options.key ?? randomBytes(24).toString('hex');
  const logger = options.logger ?? silentLogger;
  const progress = options.onProgress ?? (() => {});
  const labels = { ...options.labels };
  const stopGraceMs = options.stopGraceMs ?? CLUSTER_DEFAULTS.stopGraceMs;

  // Everything started so far, closed in reverse order on failure or close().
  const closers: (() => Promise<unknown>)[] = [];
  const ownsDataDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'flynn-ts-cluster-')));
  if (ownsDataDir) closers.push(() => rm(dataDir, { recursive: true, force: true }));
  const closeAll = async () => {
    for (const close of closers.splice(0).reverse()) {
      await close().catch((err: unknown) => logger.warn('close failed', { err: (err as Error).message }));
    }
  };

  try {
    await mkdir(dataDir, { recursive: true });
    const runtimeName = await chooseRuntime(runtimeChoice, progress);

    const discovery = createDiscovery(options.discovery ?? { backend: 'memory' }, { logger });
    closers.push(() => discovery.close());

    const runtime: Runtime = runtimeName === 'docker' ? createRuntime({ backend: 'docker', labels, logger }) : createRuntime({ backend: 'process', baseDir: join(dataDir, 'jobs'), logger });
    closers.push(() => runtime.close());
    // Without local hosts the runtime choice only decides where builds run.
    const hosts: HostAgentHandle[] = [];
    for (const [i, addr] of hostAddrs.entries()) {
      const agent = await startHostAgent({ id: `host${i + 1}`, advertiseAddr: addr, discovery, runtime, stopGraceMs, artifactsDir: join(dataDir, 'artifacts'), logger });
      hosts.push(agent);
      closers.push(async () => {
        // The cluster's jobs go with it (a Docker runtime would otherwise leave them running).
        const live = agent.agent.listJobs().filter((j) => !TERMINAL_STATES.has(j.state));
        await Promise.all(live.map((j) => agent.agent.stopJob(j.id, { graceMs: Math.min(stopGraceMs, 1000) }).catch(() => {})));
        const ids = agent.agent.listJobs().map((j) => j.id);
        await agent.close();
        await Promise.all(ids.map((id) => runtime.remove(agent.agent.id, id).catch(() => {})));
      });
    }

    const shelf: Shelf = await startShelf({ store: createBlobStore({ backend: 'fs', root: join(dataDir, 'shelf') }), host, port: ports.shelf, logger });
    closers.push(() => shelf.close());
    const shelfClient = new ShelfClient({ url: shelf.url });
    closers.push(() => shelfClient.close());

    const store: Store = options.store ?? new MemoryStore();
    if (!options.store) closers.push(() => store.close());

    const scheduler = await startScheduler({
      discovery,
      formations: new StoreFormationSource({ store, logger }),
      connectHost: hostAgentConnector((url) => new HostClient(url)),
      logger,
    });
    closers.push(() => scheduler.close());
    // Ready once the scheduler leads and knows the hosts: a deploy right after start then places its jobs at once.
    const deadline = Date.now() + CLUSTER_DEFAULTS.schedulerReadyMs;
    while (!scheduler.leading || scheduler.view().hosts.filter((h) => h.ready).length < hosts.length) {
      if (Date.now() > deadline) throw new UnavailableError(BootstrapErrorCodes.NOT_READY, `the scheduler did not lead with ${hosts.length} ready host(s) within ${CLUSTER_DEFAULTS.schedulerReadyMs} ms`);
      await sleep(20);
    }
    const jobs = new SchedulerJobRunner({ scheduler, discovery });
    closers.push(() => jobs.close());

    const router: Router = await startRouter({ discovery, routes: new StoreRouteSource(store), http: { host, port: ports.router }, logger });
    closers.push(() => router.close());

    // The git receiver starts before the controller (whose gitHost is its address); its platform is set once the controller runs.
    const slot: { platform?: GitPlatform } = {};
    const ready = (): GitPlatform => {
      if (!slot.platform) throw new UnavailableError(BootstrapErrorCodes.NOT_READY, 'the cluster is still starting');
      return slot.platform;
    };
    const git: GitReceiver = await startGitReceiver({
      host,
      port: ports.git,
      hostKey: await loadOrCreateHostKey(join(dataDir, 'ssh_host_rsa_key')),
      reposDir: join(dataDir, 'repos'),
      platform: { authorize: (k) => ready().authorize(k), appExists: (a) => ready().appExists(a), deploy: (p) => ready().deploy(p) },
      logger,
    });
    closers.push(() => git.close());

    const controller: ControllerHandle = await startController({
      key,
      store,
      jobs,
      gitHost: git.addr,
      host,
      port: ports.controller,
      logger,
      onAppDeleted: async (app) => {
        await rm(join(dataDir, 'repos', `${app.name}.git`), { recursive: true, force: true });
        await shelfClient.delete(`/cache/${app.name}.tgz`).catch(() => {});
      },
    });
    closers.push(() => controller.close());
    const client = new ControllerClient({ url: controller.url, key });
    closers.push(() => client.close());

    const executor = runtimeName === 'docker' ? createBuildExecutor({ backend: 'docker', labels }) : createBuildExecutor({ backend: 'process' });
    slot.platform = new ControllerGitPlatform({ store, client, shelf: shelfClient, executor, domain, routerPort: router.http.port });

    let closing: Promise<void> | undefined;
    const cluster: Cluster = {
      runtime: runtimeName,
      key,
      domain,
      dataDir,
      controllerUrl: controller.url,
      routerUrl: `http://${router.http.host}:${router.http.port}`,
      routerPort: router.http.port,
      gitHost: git.addr,
      gitFingerprint: git.fingerprint,
      shelfUrl: shelf.url,
      discovery,
      store,
      scheduler,
      hosts,
      client,
      appUrl: (app) => appUrl(app, domain, router.http.port),
      close: () => (closing ??= closeAll()),
      [Symbol.asyncDispose]: () => cluster.close(),
    };
    return cluster;
  } catch (err) {
    await closeAll();
    throw err;
  }
}
