/** The platform's options, checked once before anything starts, with their defaults filled in. */
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import type { Logger } from '../common/logger.js';
import { silentLogger } from '../common/logger.js';
import { checkTlsPair, type TlsCredentials } from '../common/tls/self-signed.js';
import type { Store } from '../controller/store.js';
import type { Discovery } from '../discovery/discovery.js';
import { BootstrapInputError } from './errors.js';
import type { AcmeOptions } from '../acme/index.js';
import type { RestoredBackup } from './backup-restore.js';
import type { ClusterRuntime } from './runtime-choice.js';

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
  /** The router's data plane: `node` (default, in the router's process) or `haproxy` (HAProxy ≥ 2.6 driven live; docs/router.md#engines). */
  routerEngine?: 'node' | 'haproxy';
  /** With `detachedRouter`: `close()` leaves the router process running (the apps stay reachable). Default false: it stops. */
  keepRouterOnClose?: boolean;
  /**
   * The router's access log, off unless given: one line per request in `format` (`json`, the
   * default, or `combined`), appended to `file` (mode 0600; default `<dataDir>/router-access.log`,
   * the router's stdout without a `dataDir`; `null`: stdout). The file is moved to `<file>.1` past
   * 64 MiB, and a detached router opens it again on SIGHUP (docs/router.md#access-logs).
   */
  routerAccessLog?: PlatformAccessLogOptions;
  /** The router's Prometheus metrics (`GET /metrics`) on `host` (default {@link host}) and `port` (0: any free one; `Platform.routerMetricsUrl`), off unless given. */
  routerMetrics?: { host?: string; port: number };
  /** A backup's store entries to write into the (empty) store once the shelf runs ({@link restoreDataDir} read them). */
  restore?: RestoredBackup;
  /**
   * The ACME client that gets certificates for routes with `acme` (docs/router.md#acme): its CA's
   * directory (default Let's Encrypt production), contact email, the CA bundle to trust for the
   * directory, and `renewBeforeDays` (30). It does nothing until a route asks. `false`: no ACME client.
   */
  acme?: PlatformAcmeOptions | false;
}

/** {@link PlatformOptions.routerAccessLog}. */
export interface PlatformAccessLogOptions {
  format?: 'json' | 'combined';
  file?: string | null;
}

/** {@link PlatformOptions.routerAccessLog} with its defaults filled in: `file` absolute, or null for stdout. */
export interface RouterAccessLogPlan {
  format: 'json' | 'combined';
  file: string | null;
}

/** {@link PlatformOptions.acme}. */
export type PlatformAcmeOptions = Pick<AcmeOptions, 'directoryUrl' | 'email' | 'ca' | 'renewBeforeDays'>;

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
  routerEngine: 'node' | 'haproxy';
  keepRouterOnClose: boolean;
  routerAccessLog?: RouterAccessLogPlan;
  routerMetrics?: { host: string; port: number };
  restore?: RestoredBackup;
  acme: PlatformAcmeOptions | false;
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

function routerAccessLog(options: PlatformAccessLogOptions, dataDir: string | undefined): RouterAccessLogPlan {
  const format = options.format ?? 'json';
  if (format !== 'json' && format !== 'combined') throw new BootstrapInputError(`routerAccessLog.format must be json or combined, got ${JSON.stringify(options.format)}`, 'routerAccessLog.format');
  const { file } = options;
  if (file !== undefined && file !== null && (typeof file !== 'string' || file === '')) throw new BootstrapInputError(`routerAccessLog.file must be a file path or null (stdout), got ${JSON.stringify(file)}`, 'routerAccessLog.file');
  // Absolute: a detached router started again from its saved config may run from another directory.
  return { format, file: file === undefined ? (dataDir === undefined ? null : resolve(join(dataDir, 'router-access.log'))) : file === null ? null : resolve(file) };
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
    routerEngine: options.routerEngine ?? 'node',
    keepRouterOnClose: options.keepRouterOnClose === true,
    acme: options.acme ?? {},
  };
  if (options.routerAccessLog !== undefined) plan.routerAccessLog = routerAccessLog(options.routerAccessLog, options.dataDir);
  if (options.routerMetrics !== undefined) {
    const { host, port: p } = options.routerMetrics;
    if (host !== undefined && (typeof host !== 'string' || host === '')) throw new BootstrapInputError(`routerMetrics.host must be an address, got ${JSON.stringify(host)}`, 'routerMetrics.host');
    if (!Number.isInteger(p) || p < 0 || p > 65535) throw new BootstrapInputError(`routerMetrics.port must be 0-65535, got ${JSON.stringify(p)}`, 'routerMetrics.port');
    plan.routerMetrics = { host: host ?? plan.host, port: p };
  }
  const taken = new Map<number, string>();
  const fields: [string, number][] = Object.entries(plan.ports).map(([name, p]) => [`ports.${name}`, p]);
  if (plan.routerMetrics?.host === plan.host) fields.push(['routerMetrics.port', plan.routerMetrics.port]);
  for (const [name, p] of fields) {
    const other = taken.get(p);
    if (p !== 0 && other !== undefined) throw new BootstrapInputError(`${name} and ${other} are both ${p}: each component needs its own port`, name);
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
