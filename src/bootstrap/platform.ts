/**
 * Layer 1 of a cluster (Flynn's bootstrap targets): shelf, scheduler, router, git receiver and
 * controller, started onto a discovery where host agents (layer 0) register, wired so that
 * `git push` deploys. `startCluster` is local layer 0 + this; `bootstrap` is a manifest + this.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import { UnavailableError } from '../common/errors.js';
import { componentKey } from '../common/http/key-auth.js';
import { until, WaitTimeoutError } from '../common/until.js';
import { checkTlsPair, loadOrCreateSelfSigned, type TlsCredentials } from '../common/tls/self-signed.js';
import type { Logger } from '../common/logger.js';
import { silentLogger } from '../common/logger.js';
import { ControllerClient } from '../controller/client.js';
import { MemoryStore } from '../controller/memory-store.js';
import { startController, type ControllerHandle } from '../controller/server.js';
import type { Store } from '../controller/store.js';
import type { Discovery } from '../discovery/discovery.js';
import { loadOrCreateHostKey } from '../git/keys.js';
import { startGitReceiver, type GitReceiver } from '../git/receiver.js';
import { HostClient } from '../host/client.js';
import { inspectImage } from '../host/docker-image.js';
import { ensureRuntimeImage, RUNTIME_IMAGE_DEFAULTS } from '../host/runtime-image.js';
import { findStackImage, stackOf, STACK_IMAGE_DEFAULTS } from '../host/stack-image.js';
import { startAcme, type AcmeOptions } from '../acme/index.js';
import { clusterCertificate } from '../router/certificate.js';
import { RouterListenError } from '../router/errors.js';
import { startRouter, type Router } from '../router/router.js';
import { hostAgentConnector } from '../scheduler/host-agent-connector.js';
import { startScheduler, type LeadershipState, type Scheduler } from '../scheduler/scheduler.js';
import { createBlobStore } from '../shelf/create.js';
import { ShelfClient } from '../shelf/client.js';
import { startShelf, type Shelf } from '../shelf/server.js';
import { shelfUrlSigner } from '../shelf/signed-url.js';
import { createBuildExecutor } from '../slug/create.js';
import { PROCESS_EXECUTOR_DEFAULTS } from '../slug/process-executor.js';
import { CloseStack } from './close-stack.js';
import { BootstrapErrorCodes, BootstrapInputError, BootstrapPortInUseError, COMPONENT_NAMES, isAddressInUse, type ListeningComponent } from './errors.js';
import { StoreFormationSource } from './formation-source.js';
import { appUrl, ControllerGitPlatform } from '../receiver/controller-platform.js';
import { Taffy } from '../taffy/taffy.js';
import { SchedulerJobRunner } from '../grid/job-runner.js';
import { StoreRouteSource } from './route-source.js';
import { BACKUP_PATHS, restoreStore, type RestoredBackup } from './backup-restore.js';
import { feedRouter } from './router-feed.js';
import { portsBesideRouter, startDetachedRouter } from './router-process.js';
import { loadOrCreateStickyKey } from './state-files.js';

export const PLATFORM_DEFAULTS = Object.freeze({
  /** Address every service listens on. */
  host: '127.0.0.1',
  /** Controller API port. */
  controllerPort: 8081,
  /** Router HTTP port. */
  routerPort: 8080,
  /** Router HTTPS port. */
  routerHttpsPort: 8443,
  /** Git (SSH) port. */
  gitPort: 2222,
  /** Shelf (blob store) port. */
  shelfPort: 8082,
  /** Apps answer at `<app>.<domain>`. */
  domain: 'flynn.local',
  /** Longest wait at start for the scheduler to lead with the wanted hosts ready, in ms. */
  schedulerReadyMs: 15_000,
  /** Build containers' Docker network: builds reach the npm registry as on Heroku. */
  buildNetwork: 'bridge' as BuildNetwork,
  /** The host's CA bundle, mounted into build containers (and, in `startCluster`, jobs). */
  caBundle: '/etc/ssl/certs/ca-certificates.crt',
});

/** The network of build containers: `bridge` (default) or `host`, or `none` for isolated builds (buildpacks are told with `FLYNN_NPM_OFFLINE=1`). */
export type BuildNetwork = 'none' | 'bridge' | 'host';
export const BUILD_NETWORKS: readonly BuildNetwork[] = ['none', 'bridge', 'host'];

/** Where builds (and jobs) run, as {@link chooseRuntime} picked it. */
export interface RuntimeChoice {
  runtime: 'docker' | 'process';
  /** With Docker: the image builds (and, in `startCluster`, jobs) run in. */
  image?: string;
  /** `$STACK` of builds and jobs: the image's `STACK`, `flynn-ts-slim` on the runtime image, `host` for process builds. */
  stack?: string;
}

/** Where builds (and, in `startCluster`, jobs) run. `auto`: Docker when the engine answers and the runtime image can be ensured, else processes. */
export type ClusterRuntime = 'auto' | 'docker' | 'process';

/** One step of a start, as reported to `onStep` (e.g. `{ step: 'shelf', message: 'http://127.0.0.1:8082' }`). */
export interface BootstrapStep {
  /** `build`, `shelf`, `scheduler`, `router`, `git`, `controller` here; `bootstrap` adds `discovery`, `wait-hosts`, `store`, `ready`. */
  step: string;
  message: string;
}

export interface PlatformOptions {
  /** Where host agents register (`flynn-host`) and the platform's services are found. The caller owns and closes it. */
  discovery: Discovery;
  /** The controller's store (e.g. an `EtcdStore`); the caller owns and closes it. Default: a `MemoryStore` owned by the platform. */
  store?: Store;
  /** Where shelf blobs, git repositories and the SSH host key live. Default: a temp dir removed on close. */
  dataDir?: string;
  /** Address every service listens on. Default {@link PLATFORM_DEFAULTS}.host. */
  host?: string;
  /** Ports (0 picks a free one). Defaults: controller 8081, router 8080, routerHttps 8443 (0 when router is 0), git 2222, shelf 8082. */
  ports?: { controller?: number; router?: number; routerHttps?: number; git?: number; shelf?: number };
  /** Where builds run. Default `auto`. */
  build?: ClusterRuntime;
  /**
   * Image builds run in (with Docker); it must exist in the engine. Default: the stack image
   * (`flynn-ts/stack:latest`, `npm run images`) when it is built, else the slim runtime image.
   */
  image?: string;
  /** Network of build containers. Default {@link PLATFORM_DEFAULTS}.buildNetwork (`bridge`). */
  buildNetwork?: BuildNetwork;
  /**
   * Save each Dockerfile app's image into shelf, for host agents whose Docker engine is not the
   * platform's (they load it before a job starts). Default false: the hosts share the building engine.
   */
  shipImages?: boolean;
  /** Extra environment of every build, e.g. `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY` (both cases) behind a proxy. Default none. */
  buildEnv?: Record<string, string>;
  /** Host CA bundle mounted read-only into build containers; skipped when missing, none with `null`. Default {@link PLATFORM_DEFAULTS}.caBundle. */
  caBundle?: string | null;
  /** Start only once the scheduler leads with at least this many ready hosts. Default 0. */
  readyHosts?: number;
  /** Longest wait for {@link readyHosts}, in ms. Default {@link PLATFORM_DEFAULTS}.schedulerReadyMs. */
  readyTimeoutMs?: number;
  /** Extra labels on every build container. */
  labels?: Record<string, string>;
  /** Cluster key (controller auth). Default: generated. */
  key?: string;
  /**
   * The controller's TLS certificate and key (PEM). Default: a self-signed certificate made once and
   * kept in the data dir (`controller-tls.crt`, `controller-tls.key` 0600); clients pin it
   * ({@link Platform.controllerPin}, `flynn server-add -p`).
   */
  tls?: TlsCredentials;
  /** Serve the controller over plain HTTP (the key and env in clear; a warning is logged). Default false. */
  insecureHttp?: boolean;
  /**
   * Let `flynn deploy-git` (Taffy) fetch `file://` URLs, which read this host's disk. Default: true
   * when {@link host} is a loopback address (only this machine reaches the API), else false.
   */
  allowFileGitUrls?: boolean;
  /** Default {@link PLATFORM_DEFAULTS}.domain. */
  domain?: string;
  /** Default silent. */
  logger?: Logger;
  /** Progress lines while choosing the build runtime (e.g. building the runtime image). */
  onProgress?: (line: string) => void;
  /** Each component as it comes up. */
  onStep?: (step: BootstrapStep) => void;
  /**
   * Run the router as a detached process of its own that keeps serving its last routes and backends
   * while the platform is down; a platform started again on the same data dir re-attaches to it
   * (docs/decisions.md). Default false: the router runs in this process.
   */
  detachedRouter?: boolean;
  /** With `detachedRouter`: `close()` leaves the router process running (the apps stay reachable). Default false: it stops. */
  keepRouterOnClose?: boolean;
  /** A backup's store entries to write into the (empty) store once the shelf runs ({@link restoreDataDir} read them). */
  restore?: RestoredBackup;
  /**
   * The ACME client that gets certificates for routes with `acme` (docs/router.md#acme): its CA's
   * directory (default Let's Encrypt production), contact email, the CA bundle to trust for the
   * directory, and `renewBeforeDays` (30). It does nothing until a route asks. `false`: no ACME client.
   */
  acme?: PlatformAcmeOptions | false;
}

/** {@link PlatformOptions.acme}. */
export type PlatformAcmeOptions = Pick<AcmeOptions, 'directoryUrl' | 'email' | 'ca' | 'renewBeforeDays'>;

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

/** Platform options, checked once: what {@link launchPlatform} starts. */
export interface PlatformPlan {
  discovery: Discovery;
  store?: Store;
  dataDir?: string;
  host: string;
  ports: { controller: number; router: number; routerHttps: number; git: number; shelf: number };
  build: ClusterRuntime;
  image?: string;
  buildNetwork: BuildNetwork;
  shipImages: boolean;
  buildEnv: Record<string, string>;
  caBundle: string | null;
  readyHosts: number;
  readyTimeoutMs: number;
  labels: Record<string, string>;
  key: string;
  tls?: TlsCredentials;
  insecureHttp: boolean;
  allowFileGitUrls: boolean;
  domain: string;
  logger: Logger;
  onProgress: (line: string) => void;
  onStep: (step: BootstrapStep) => void;
  detachedRouter: boolean;
  keepRouterOnClose: boolean;
  restore?: RestoredBackup;
  acme: PlatformAcmeOptions | false;
}

async function dockerAnswers(): Promise<boolean> {
  try {
    await new Dockerode().ping();
    return true;
  } catch {
    return false;
  }
}

/**
 * Pick the runtime and image: `auto` is Docker when the engine answers and an image is there (or
 * the runtime image can be built). The image is `image` when given (it must exist), else the stack
 * image when it is built, else the slim runtime image, with one line saying how to build the stack.
 */
export async function chooseRuntime(choice: ClusterRuntime, progress: (line: string) => void, image?: string): Promise<RuntimeChoice> {
  const processes: RuntimeChoice = { runtime: 'process', stack: PROCESS_EXECUTOR_DEFAULTS.stack };
  if (choice === 'process') return processes;
  if (choice === 'docker') return { runtime: 'docker', ...(await chooseImage(image, progress)) };
  if (!(await dockerAnswers())) {
    progress('Docker is not reachable: running jobs as processes');
    return processes;
  }
  try {
    return { runtime: 'docker', ...(await chooseImage(image, progress)) };
  } catch (err) {
    if (err instanceof BootstrapInputError) throw err; // a named image that is missing is the caller's to fix
    progress(`cannot ensure the runtime image (${(err as Error).message}): running jobs as processes`);
    return processes;
  }
}

async function chooseImage(image: string | undefined, progress: (line: string) => void): Promise<{ image: string; stack?: string }> {
  const docker = new Dockerode();
  if (image !== undefined) {
    const info = await inspectImage(docker, image);
    if (!info) throw new BootstrapInputError(`image ${image} is not in the Docker engine: build or load it first (\`npm run images\` builds ${STACK_IMAGE_DEFAULTS.latest})`, 'image');
    const stack = stackOf(info);
    progress(`builds run on ${image}${stack ? ` (STACK=${stack})` : ''}`);
    return { image, ...(stack ? { stack } : {}) };
  }
  const found = await findStackImage(docker);
  if (found) {
    progress(`builds run on the stack image ${found.name} (STACK=${found.stack})`);
    return { image: found.name, stack: found.stack };
  }
  await ensureRuntimeImage({ docker, onProgress: progress });
  progress(`the stack image ${STACK_IMAGE_DEFAULTS.latest} is not built: builds run on the slim runtime image (node + busybox: no bash, git, python3 or g++); build the stack with \`npm run images\``);
  return { image: RUNTIME_IMAGE_DEFAULTS.latest, stack: RUNTIME_IMAGE_DEFAULTS.stack };
}

/** 127.0.0.0/8, ::1 or localhost: only this machine reaches a service listening there. */
function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function port(value: number | undefined, fallback: number, field: string): number {
  const p = value ?? fallback;
  if (!Number.isInteger(p) || p < 0 || p > 65535) throw new BootstrapInputError(`ports.${field} must be 0-65535, got ${JSON.stringify(value)}`, `ports.${field}`);
  return p;
}

/** Check platform options (before anything starts) and fill in the defaults. */
export function planPlatform(options: Omit<PlatformOptions, 'discovery'>): Omit<PlatformPlan, 'discovery'> {
  const build = options.build ?? 'auto';
  if (!['auto', 'docker', 'process'].includes(build)) throw new BootstrapInputError(`runtime must be auto, docker or process, got ${JSON.stringify(build)}`, 'runtime');
  const buildNetwork = options.buildNetwork ?? PLATFORM_DEFAULTS.buildNetwork;
  if (!BUILD_NETWORKS.includes(buildNetwork)) throw new BootstrapInputError(`buildNetwork must be ${BUILD_NETWORKS.join(', ')}, got ${JSON.stringify(buildNetwork)}`, 'buildNetwork');
  if (options.image !== undefined && (typeof options.image !== 'string' || options.image === '')) throw new BootstrapInputError(`image must be an image name, got ${JSON.stringify(options.image)}`, 'image');
  const readyHosts = options.readyHosts ?? 0;
  if (!Number.isInteger(readyHosts) || readyHosts < 0) throw new BootstrapInputError(`readyHosts must be an integer ≥ 0, got ${JSON.stringify(options.readyHosts)}`, 'readyHosts');
  const plan: Omit<PlatformPlan, 'discovery'> = {
    host: options.host ?? PLATFORM_DEFAULTS.host,
    ports: {
      controller: port(options.ports?.controller, PLATFORM_DEFAULTS.controllerPort, 'controller'),
      router: port(options.ports?.router, PLATFORM_DEFAULTS.routerPort, 'router'),
      // A router on a free port gets its HTTPS listener on a free port too (tests, clusters side by side).
      routerHttps: port(options.ports?.routerHttps, options.ports?.router === 0 ? 0 : PLATFORM_DEFAULTS.routerHttpsPort, 'routerHttps'),
      git: port(options.ports?.git, PLATFORM_DEFAULTS.gitPort, 'git'),
      shelf: port(options.ports?.shelf, PLATFORM_DEFAULTS.shelfPort, 'shelf'),
    },
    build,
    buildNetwork,
    shipImages: options.shipImages === true,
    // An empty value counts as unset (a manifest's `${HTTPS_PROXY:-}` where none is set).
    buildEnv: Object.fromEntries(Object.entries(options.buildEnv ?? {}).filter(([, v]) => v !== '')),
    caBundle: options.caBundle === undefined ? PLATFORM_DEFAULTS.caBundle : options.caBundle,
    readyHosts,
    readyTimeoutMs: options.readyTimeoutMs ?? PLATFORM_DEFAULTS.schedulerReadyMs,
    labels: { ...options.labels },
    key: options.key ?? randomBytes(24).toString('hex'),
    insecureHttp: options.insecureHttp === true,
    allowFileGitUrls: options.allowFileGitUrls ?? isLoopback(options.host ?? PLATFORM_DEFAULTS.host),
    domain: options.domain ?? PLATFORM_DEFAULTS.domain,
    logger: options.logger ?? silentLogger,
    onProgress: options.onProgress ?? (() => {}),
    onStep: options.onStep ?? (() => {}),
    detachedRouter: options.detachedRouter === true,
    keepRouterOnClose: options.keepRouterOnClose === true,
    acme: options.acme ?? {},
  };
  const taken = new Map<number, string>();
  for (const [name, p] of Object.entries(plan.ports)) {
    const other = taken.get(p);
    if (p !== 0 && other !== undefined) throw new BootstrapInputError(`ports.${name} and ports.${other} are both ${p}: each component needs its own port`, `ports.${name}`);
    taken.set(p, name);
  }
  if (options.tls !== undefined) {
    if (plan.insecureHttp) throw new BootstrapInputError('tls and insecureHttp exclude each other: a certificate is for HTTPS', 'tls');
    checkTlsPair(options.tls, 'tls');
    plan.tls = options.tls;
  }
  if (plan.keepRouterOnClose && plan.detachedRouter && options.dataDir === undefined) {
    throw new BootstrapInputError('keepRouterOnClose needs a dataDir: a router left running is found again through its data dir', 'keepRouterOnClose');
  }
  if (options.restore) plan.restore = options.restore;
  if (options.store) plan.store = options.store;
  if (options.dataDir !== undefined) plan.dataDir = options.dataDir;
  if (options.image !== undefined) plan.image = options.image;
  return plan;
}

/** Whether `host:port` can be listened on right now (bound and released at once); other listen errors are thrown. */
function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (err) => (isAddressInUse(err) ? resolve(false) : reject(err)));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve(true)));
  });
}

/** A listen that fails for another reason than a busy port: no such local address (`host`), or a privileged port. */
function cannotListen(component: ListeningComponent, host: string, port: number, err: unknown): BootstrapInputError {
  const code = (err as NodeJS.ErrnoException).code;
  const why = code === 'EADDRNOTAVAIL' ? 'no such local address' : code === 'EACCES' ? 'permission denied (ports below 1024 need privileges)' : (err as Error).message;
  const error = new BootstrapInputError(`the ${COMPONENT_NAMES[component]} cannot listen on ${host}:${port}: ${why}`, code === 'EADDRNOTAVAIL' ? 'host' : `ports.${component}`);
  Object.defineProperty(error, 'cause', { value: err, enumerable: false });
  return error;
}

/**
 * Throw {@link BootstrapPortInUseError} for the first fixed port of the plan that is in use, before
 * anything starts (a runtime image build or a wait for hosts would otherwise come first). Each
 * listen is still checked as the component starts: a port taken in between fails the same way.
 */
export async function checkPorts(host: string, ports: PlatformPlan['ports']): Promise<void> {
  for (const component of ['shelf', 'router', 'routerHttps', 'git', 'controller'] as const) {
    const p = ports[component];
    if (p === 0) continue;
    const free = await portFree(host, p).catch((err: unknown) => {
      throw cannotListen(component, host, p, err);
    });
    if (!free) throw new BootstrapPortInUseError(component, host, p);
  }
}

/** Run the start of a component that listens on `host:port`, turning "address in use" into {@link BootstrapPortInUseError}. */
async function listening<T>(component: ListeningComponent, host: string, port: number, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (err) {
    if (isAddressInUse(err)) throw new BootstrapPortInUseError(component, host, port, err);
    throw err;
  }
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
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    await checkPorts(host, plan.detachedRouter ? await portsBesideRouter(dataDir, ports) : ports);
    // The cluster's default certificate is made once and kept with the data (docs/router.md).
    const certDir = join(dataDir, 'router-tls');
    const certNames = [`*.${domain}`, domain, 'localhost', host];
    const http = { host, port: ports.router };
    const https = { host, port: ports.routerHttps };
    // Sticky cookies outlive a restart of the router.
    const stickyKey = await loadOrCreateStickyKey(dataDir);
    // A router process to spawn loads while the rest starts (awaited at the router's step).
    const detachedStart = plan.detachedRouter ? startDetachedRouter({ dataDir, http, https, certDir, certNames, stickyKey, logger }) : undefined;
    if (detachedStart) {
      detachedStart.catch(() => undefined);
      closers.push(async () => {
        const detached = await detachedStart.catch(() => undefined);
        if (detached && !plan.keepRouterOnClose) await detached.stop();
      });
    }
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

    let router: Pick<Router, 'http' | 'https'>;
    if (detachedStart) {
      const detached = await detachedStart;
      const feed = feedRouter({ routes: new StoreRouteSource(store), discovery, push: (s) => detached.push(s), logger });
      closers.push(() => feed.close());
      await feed.synced;
      router = detached;
    } else {
      const defaultCertificate = await clusterCertificate(certDir, certNames);
      const inProcess = await listening('router', host, ports.router, () =>
        startRouter({ discovery, routes: new StoreRouteSource(store), http, https, defaultCertificate, stickyKey, logger }).catch((err: unknown) => {
          if (err instanceof RouterListenError && err.message.includes('for https')) throw new BootstrapPortInUseError('routerHttps', host, ports.routerHttps, { code: 'EADDRINUSE' });
          throw err;
        }),
      );
      closers.push(() => inProcess.close());
      router = inProcess;
    }
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
