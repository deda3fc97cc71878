/**
 * Layer 1 of a cluster (Flynn's bootstrap targets): shelf, scheduler, router, git receiver and
 * controller, started onto a discovery where host agents (layer 0) register, wired so that
 * `git push` deploys. `startCluster` is local layer 0 + this; `bootstrap` is a manifest + this.
 * The options and their checks are in platform-plan.ts, the runtime choice in runtime-choice.ts,
 * the ports in ports.ts, the router in platform-router.ts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAcme } from '../acme/index.js';
import { UnavailableError } from '../common/errors.js';
import { componentKey } from '../common/http/key-auth.js';
import { until, WaitTimeoutError } from '../common/until.js';
import { loadOrCreateSelfSigned } from '../common/tls/self-signed.js';
import { ControllerClient } from '../controller/client.js';
import { MemoryStore } from '../controller/memory-store.js';
import { startController, type ControllerHandle } from '../controller/server.js';
import type { Store } from '../controller/store.js';
import type { Discovery } from '../discovery/discovery.js';
import { loadOrCreateHostKey } from '../git/keys.js';
import { startGitReceiver, type GitReceiver } from '../git/receiver.js';
import { StoreFormationSource } from '../grid/formation-source.js';
import { SchedulerJobRunner } from '../grid/job-runner.js';
import { HostClient } from '../host/client.js';
import { appUrl, ControllerGitPlatform } from '../receiver/controller-platform.js';
import { hostAgentConnector } from '../scheduler/host-agent-connector.js';
import { startScheduler, type LeadershipState, type Scheduler } from '../scheduler/scheduler.js';
import { createBlobStore } from '../shelf/create.js';
import { ShelfClient } from '../shelf/client.js';
import { startShelf, type Shelf } from '../shelf/server.js';
import { shelfUrlSigner } from '../shelf/signed-url.js';
import { createBuildExecutor } from '../slug/create.js';
import { Taffy } from '../taffy/taffy.js';
import { BACKUP_PATHS, restoreStore } from './backup-restore.js';
import { CloseStack } from './close-stack.js';
import { BootstrapErrorCodes, BootstrapInputError } from './errors.js';
import { planPlatform, type PlatformOptions, type PlatformPlan } from './platform-plan.js';
import { beginRouter } from './platform-router.js';
import { checkPorts, listening } from './ports.js';
import { portsBesideRouter } from './router-process.js';
import { chooseRuntime, type RuntimeChoice } from './runtime-choice.js';
import { makeDataDirPrivate } from './state-files.js';

export { PLATFORM_DEFAULTS, BUILD_NETWORKS, planPlatform } from './platform-plan.js';
export type { BuildNetwork, BootstrapStep, PlatformAccessLogOptions, PlatformAcmeOptions, PlatformOptions, PlatformPlan } from './platform-plan.js';
export { chooseRuntime } from './runtime-choice.js';
export type { ClusterRuntime, RuntimeChoice } from './runtime-choice.js';
export { checkPorts } from './ports.js';

/** A started layer 1. */
export interface Platform extends AsyncDisposable {
  /** Where builds run. */
  readonly runtime: 'docker' | 'process';
  /** With Docker: the image builds run in. */
  readonly image?: string;
  /** `$STACK` of builds. */
  readonly stack?: string;
  readonly key: string;
  /** The key host agents must be started with (`componentKey(key, 'host')`; examples/host `--key`). */
  readonly hostAgentKey: string;
  readonly domain: string;
  readonly dataDir: string;
  /** `https://host:port` of the controller (`http://` with `insecureHttp`). */
  readonly controllerUrl: string;
  /** Base64 SHA-256 of the controller's certificate (`flynn server-add -p <pin>`); null with `insecureHttp`. */
  readonly controllerPin: string | null;
  /** `http://host:port` of the router's HTTP listener. */
  readonly routerUrl: string;
  readonly routerPort: number;
  /** `https://host:port` of the router's HTTPS listener (each route's certificate by SNI, else the cluster's self-signed one in `<dataDir>/router-tls`). */
  readonly routerHttpsUrl: string;
  readonly routerHttpsPort: number;
  /** `http://host:port/metrics` of the router's Prometheus metrics, with `routerMetrics`. */
  readonly routerMetricsUrl?: string;
  /** The file the router appends its access log to, or `stdout`, with `routerAccessLog`. */
  readonly routerAccessLog?: string;
  /** `host:port` of the git receiver (`ssh://git@<gitHost>/<app>.git`). */
  readonly gitHost: string;
  /** SSH host key fingerprint of the git receiver (`SHA256:...`). */
  readonly gitFingerprint: string;
  readonly shelfUrl: string;
  readonly discovery: Discovery;
  readonly store: Store;
  readonly scheduler: Scheduler;
  /** A typed client of the controller, owned by the platform. */
  readonly client: ControllerClient;
  /** `http://<app>.<domain>:<routerPort>`. */
  appUrl(app: string): string;
  /** Stop every component in reverse order of start (not the discovery, the store given, nor the hosts). Idempotent. */
  close(): Promise<void>;
}

/**
 * The arguments of the `flynn server-add` that adds `p` to the CLI as `name`, pinning its
 * controller certificate and git host key (`key`: what to show for the cluster key, e.g.
 * `$CONTROLLER_KEY`; default the key itself).
 */
export function serverAddArgs(p: Pick<Platform, 'controllerUrl' | 'controllerPin' | 'gitHost' | 'gitFingerprint' | 'key'>, name: string, key: string = p.key): string[] {
  return ['server-add', ...(p.controllerPin !== null ? ['-p', p.controllerPin] : []), '-f', '-g', p.gitHost, '--git-fingerprint', p.gitFingerprint, name, p.controllerUrl, key];
}

/**
 * Start layer 1 onto a running layer 0 reachable through `options.discovery`.
 * @throws {BootstrapPortInUseError} when a fixed port is taken; nothing started is left running.
 */
export async function startPlatform(options: PlatformOptions): Promise<Platform> {
  if (!options?.discovery) throw new BootstrapInputError('discovery is required: the Discovery where the host agents register', 'discovery');
  const plan: PlatformPlan = { ...planPlatform(options), discovery: options.discovery };
  await checkPorts(plan.host, plan.ports);
  const runtime = await chooseRuntime(plan.build, plan.onProgress, plan.image);
  return launchPlatform(plan, runtime);
}

/** Start the components of a checked plan, builds on `choice` (already made by {@link chooseRuntime}). */
export async function launchPlatform(plan: PlatformPlan, choice: RuntimeChoice): Promise<Platform> {
  const { runtime } = choice;
  const { discovery, host, ports, key, domain, logger, labels } = plan;
  // Each internal component has its own key derived from the cluster key (docs/security.md).
  const hostAgentKey = componentKey(key, 'host');
  const shelfKey = componentKey(key, 'shelf');
  const step = (name: string, message: string) => plan.onStep({ step: name, message });
  // Everything started so far, closed in reverse order on failure or close().
  const closers = new CloseStack(logger);
  const dataDir = plan.dataDir ?? (await mkdtemp(join(tmpdir(), 'flynn-ts-platform-')));
  if (plan.dataDir === undefined) closers.push(() => rm(dataDir, { recursive: true, force: true }));

  try {
    await makeDataDirPrivate(dataDir);
    await checkPorts(host, plan.detachedRouter ? await portsBesideRouter(dataDir, ports) : ports);
    // A router process to spawn loads while the rest starts.
    const pendingRouter = await beginRouter(plan, dataDir, closers);
    step('build', `${runtime} builds${choice.image ? ` on ${choice.image}` : ''}, network ${plan.buildNetwork}, data in ${dataDir}`);
    const shelf: Shelf = await listening('shelf', host, ports.shelf, () => startShelf({ store: createBlobStore({ backend: 'fs', root: join(dataDir, 'shelf') }), host, port: ports.shelf, key: shelfKey, logger }));
    closers.push(() => shelf.close());
    const shelfClient = new ShelfClient({ url: shelf.url, key: shelfKey });
    closers.push(() => shelfClient.close());
    step('shelf', shelf.url);

    const store: Store = plan.store ?? new MemoryStore();
    if (!plan.store) closers.push(() => store.close());
    // A restored backup is in the store before anything reads it.
    if (plan.restore) await restoreStore(store, plan.restore, shelf.url);

    const scheduler = await startScheduler({
      discovery,
      formations: new StoreFormationSource({ store, logger }),
      // The crash backoff outlives a platform restart with the store.
      state: store,
      // Hosts fetch slugs by URLs signed as each job starts: they never hold the shelf key.
      connectHost: hostAgentConnector((url) => new HostClient({ url, key: hostAgentKey }), { artifactUrl: shelfUrlSigner({ url: shelf.url, key: shelfKey }) }),
      logger,
    });
    closers.push(() => scheduler.close());
    // Ready once the scheduler leads and knows the hosts: a deploy right after start then places its jobs at once.
    let led: LeadershipState = { leading: false, readyHosts: 0 };
    const leads = (s: LeadershipState) => ((led = s), s.leading && s.readyHosts >= plan.readyHosts);
    await until((signal) => scheduler.watchLeadership({ signal }), leads, { timeoutMs: plan.readyTimeoutMs }).catch((err: unknown) => {
      if (!(err instanceof WaitTimeoutError)) throw err;
      throw new UnavailableError(BootstrapErrorCodes.NOT_READY, `the scheduler did not lead with ${plan.readyHosts} ready host(s) within ${plan.readyTimeoutMs} ms (leading: ${led.leading}, ready hosts: ${led.readyHosts})`);
    });
    step('scheduler', `leading, ${led.readyHosts} host(s) ready`);
    const jobs = new SchedulerJobRunner({ scheduler, discovery, hostKey: hostAgentKey });
    closers.push(() => jobs.close());

    const router = await pendingRouter.serve(store, discovery);
    const routerUrl = `http://${router.http.host}:${router.http.port}`;
    step('router', `${routerUrl} (apps at http://<app>.${domain}:${router.http.port})`);
    if (plan.acme) {
      // Certificates for routes with `acme`: the challenges travel to the router as route changes.
      const acme = await startAcme({ store, ...plan.acme, routerUrl, logger });
      closers.push(() => acme.close());
    }

    // The git receiver starts before the controller (whose gitHost is its address); its platform is set once the controller runs.
    const slot: { platform?: ControllerGitPlatform } = {};
    const ready = (): ControllerGitPlatform => {
      if (!slot.platform) throw new UnavailableError(BootstrapErrorCodes.NOT_READY, 'the cluster is still starting');
      return slot.platform;
    };
    const hostKey = await loadOrCreateHostKey(join(dataDir, 'ssh_host_rsa_key'));
    const git: GitReceiver = await listening('git', host, ports.git, () => startGitReceiver({
      host,
      port: ports.git,
      hostKey,
      reposDir: join(dataDir, 'repos'),
      platform: { authorize: (k) => ready().authorize(k), appExists: (a) => ready().appExists(a), deploy: (p) => ready().deploy(p), preparePush: (a) => slot.platform?.preparePush?.(a) },
      logger,
    }));
    closers.push(() => git.close());
    step('git', `ssh://git@${git.addr} host key ${git.fingerprint}`);

    // HTTPS unless asked otherwise: the given certificate, else the one kept in the data dir.
    const tls = plan.insecureHttp ? undefined : (plan.tls ?? (await loadOrCreateSelfSigned({ dir: dataDir, name: 'controller-tls', hosts: [host] })));
    if (plan.insecureHttp) plan.onProgress('WARNING: the controller serves plain HTTP (--insecure-http): the cluster key and apps\' env cross the network in clear');
    const controller: ControllerHandle = await listening('controller', host, ports.controller, () => startController({
      key,
      ...(tls ? { tls } : {}),
      store,
      jobs,
      gitHost: git.addr,
      appDomain: domain,
      reservedPorts: {
        ...(ports.controller ? { [ports.controller]: "the controller's port" } : {}),
        [shelf.port]: "shelf's port",
        [git.port]: "the git receiver's port",
        ...(router.https ? { [router.https.port]: "the router's HTTPS port" } : {}),
        [router.http.port]: "the router's HTTP port",
      },
      // Taffy deploys a git URL's tree through the same push deploy (src/taffy).
      deployGit: new Taffy({ platform: { deploy: (source) => ready().deploy(source), preparePush: (a) => slot.platform?.preparePush(a) }, allowFileUrls: plan.allowFileGitUrls, workDir: dataDir }),
      host,
      port: ports.controller,
      logger,
      // `flynn cluster backup`: the store, plus what is kept beside it here.
      backup: { dataDir, paths: [...BACKUP_PATHS], meta: { shelfUrl: shelf.url } },
      onAppDeleted: async (app) => {
        await rm(join(dataDir, 'repos', `${app.name}.git`), { recursive: true, force: true });
        await shelfClient.delete(`/cache/${app.name}.tgz`).catch(() => {});
      },
    }));
    closers.push(() => controller.close());
    const client = new ControllerClient({ url: controller.url, key, ...(controller.pin !== null ? { tls: { pin: controller.pin } } : {}) });
    closers.push(() => client.close());
    // The git receiver closes first of all (closing twice is a no-op): it cancels the pushes in
    // flight and tells each pusher the platform stops, while their deploy still reaches the controller.
    closers.push(() => git.close());

    const common = { caBundle: plan.caBundle, env: plan.buildEnv, ...(choice.stack === undefined ? {} : { stack: choice.stack }) };
    const executor =
      runtime === 'docker'
        ? createBuildExecutor({ backend: 'docker', labels, network: plan.buildNetwork, ...(choice.image === undefined ? {} : { image: choice.image }), ...common })
        : createBuildExecutor({ backend: 'process', offline: plan.buildNetwork === 'none', ...common });
    // Build caches stay on this host (one builder: the platform), used in place: no per-build download or upload.
    slot.platform = new ControllerGitPlatform({ client, shelf: shelfClient, executor, domain, routerPort: router.http.port, build: { cacheRoot: join(dataDir, 'build-cache') }, ...(runtime === 'docker' ? { dockerfile: { labels, network: plan.buildNetwork, shipImages: plan.shipImages } } : {}) });
    step('controller', controller.pin === null ? `${controller.url} (plain HTTP)` : `${controller.url} pin ${controller.pin}`);

    const platform: Platform = {
      runtime,
      ...(choice.image === undefined ? {} : { image: choice.image }),
      ...(choice.stack === undefined ? {} : { stack: choice.stack }),
      key,
      hostAgentKey,
      domain,
      dataDir,
      controllerUrl: controller.url,
      controllerPin: controller.pin,
      routerUrl,
      routerPort: router.http.port,
      routerHttpsUrl: router.https?.url ?? '',
      routerHttpsPort: router.https?.port ?? 0,
      ...(router.metrics ? { routerMetricsUrl: `${router.metrics.url}/metrics` } : {}),
      ...(plan.routerAccessLog ? { routerAccessLog: plan.routerAccessLog.file ?? 'stdout' } : {}),
      gitHost: git.addr,
      gitFingerprint: git.fingerprint,
      shelfUrl: shelf.url,
      discovery,
      store,
      scheduler,
      client,
      appUrl: (app) => appUrl(app, domain, router.http.port),
      close: () => closers.close(),
      [Symbol.asyncDispose]: () => platform.close(),
    };
    return platform;
  } catch (err) {
    await closers.close();
    throw err;
  }
}
