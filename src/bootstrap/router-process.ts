/**
 * The platform's side of the detached router (router-child.ts): find the one already running for a
 * data dir and re-attach to it, or spawn it; push snapshots to it; stop it or leave it running.
 * Control goes over `<dataDir>/router.sock`, reachable only by the data dir's owner (mode 0700).
 */
import { spawn } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../common/atomic-file.js';
import { UnavailableError } from '../common/errors.js';
import { sleep } from '../common/lifecycle.js';
import type { LogLevel, Logger } from '../common/logger.js';
import type { BoundAddress, ListenAddress } from '../router/router.js';
import { BootstrapErrorCodes, BootstrapPortInUseError } from './errors.js';
import type { RouterAccessLogPlan } from './platform-plan.js';
import type { RouterSnapshot } from './router-mirror.js';

/** What router-child.ts reads from its config file (mode 0600: it holds the sticky key). */
export interface RouterChildConfig {
  socket: string;
  http: ListenAddress;
  https: ListenAddress;
  /** Where the cluster's default certificate is kept, and its names. */
  certDir: string;
  certNames: string[];
  stickyKey: string;
  /** The data plane (default node). */
  engine?: 'node' | 'haproxy';
  staleGraceMs?: number;
  logLevel: LogLevel;
  /** Where the router keeps its last snapshot (mode 0600), served again at once when it starts anew. */
  snapshotFile?: string;
  /** The access log: the child opens `file` itself (null: its stdout, i.e. `<dataDir>/router.log`). Off when absent. */
  accessLog?: RouterAccessLogPlan;
  /** The metrics listener (`GET /metrics`), off when absent. */
  metrics?: ListenAddress;
}

/** `GET /status` of a router process. */
export interface RouterStatus {
  pid: number;
  http: BoundAddress;
  https: BoundAddress | null;
  /** The platform run whose snapshot it serves, null before the first. */
  session: string | null;
  startedAt: string;
  routes: number;
  backends: number;
  /** Its metrics listener, null when off (absent from a router started by an older flynn-ts). */
  metrics?: BoundAddress | null;
  /** Its access log, null when off. */
  accessLog?: RouterAccessLogPlan | null;
}

export const ROUTER_PROCESS_DEFAULTS = Object.freeze({
  /** Longest wait for a spawned router to answer on its socket, in ms. */
  startTimeoutMs: 20_000,
  /** Longest wait for a control request, in ms. */
  requestTimeoutMs: 5_000,
});

export interface DetachedRouterOptions {
  dataDir: string;
  http: ListenAddress;
  https: ListenAddress;
  certDir: string;
  certNames: string[];
  stickyKey: string;
  /** The data plane of a router it spawns (one found running keeps its own). Default node. */
  engine?: 'node' | 'haproxy';
  logger: Logger;
  staleGraceMs?: number;
  accessLog?: RouterAccessLogPlan;
  metrics?: ListenAddress;
}

/** A router process, started by this platform or found running. */
export interface DetachedRouter {
  /** The process's pid (a new one after {@link respawn}). */
  readonly pid: number;
  readonly http: BoundAddress;
  readonly https: BoundAddress | undefined;
  /** Its metrics listener, when it serves one. */
  readonly metrics: BoundAddress | undefined;
  /** True when it was running already (a restarted platform re-attached to it). */
  readonly reattached: boolean;
  /** Make its routes and backends those of `snapshot`; resolves once it serves them. */
  push(snapshot: RouterSnapshot): Promise<void>;
  /** Start it again on the ports it had (after it died); resolves to the new pid once it answers. */
  respawn(): Promise<number>;
  /** Stop it (in-flight requests finish first) and wait until it is gone. */
  stop(): Promise<void>;
}

/** `<dataDir>/router.sock`. */
export function routerSocket(dataDir: string): string {
  return join(dataDir, 'router.sock');
}

/** `<dataDir>/router.json`: the config of the last router process spawned for the data dir. */
function routerConfigFile(dataDir: string): string {
  return join(dataDir, 'router.json');
}

/** Spawns in flight, by data dir: a start that comes meanwhile waits for it instead of spawning a second router. */
const spawning = new Map<string, Promise<unknown>>();

function call(socket: string, method: string, path: string, body?: unknown, timeoutMs: number = ROUTER_PROCESS_DEFAULTS.requestTimeoutMs): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request({ socketPath: socket, method, path, timeout: timeoutMs, headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`the router process did not answer ${method} ${path} within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** The router process serving `dataDir`, or null when none answers on its socket. */
export async function findRouter(dataDir: string): Promise<RouterStatus | null> {
  try {
    const { status, text } = await call(routerSocket(dataDir), 'GET', '/status', undefined, 2_000);
    return status === 200 ? (JSON.parse(text) as RouterStatus) : null;
  } catch {
    return null;
  }
}

/** Whether the running router `status` listens where `want` asks (port 0 takes any) and logs as it asks. */
export function routerMatches(status: RouterStatus, want: Pick<DetachedRouterOptions, 'http' | 'https' | 'metrics' | 'accessLog'>): boolean {
  const same = (bound: BoundAddress | null | undefined, address: ListenAddress) => bound != null && bound.host === address.host && (address.port === 0 || bound.port === address.port);
  const metrics = want.metrics === undefined ? status.metrics == null : same(status.metrics, want.metrics);
  const log = (a: RouterAccessLogPlan | null | undefined) => (a == null ? null : `${a.format} ${a.file ?? '-'}`);
  return same(status.http, want.http) && same(status.https, want.https) && metrics && log(status.accessLog) === log(want.accessLog);
}

/**
 * `ports` without the router's when the router process of `dataDir` already holds them (a start
 * re-attaches to it instead of listening), for {@link checkPorts}.
 */
export async function portsBesideRouter<P extends { router: number; routerHttps: number }>(dataDir: string, ports: P): Promise<P> {
  // A router being started again from its saved config holds its ports already.
  await spawning.get(dataDir);
  const status = await findRouter(dataDir);
  if (!status) return ports;
  return { ...ports, router: status.http.port === ports.router ? 0 : ports.router, routerHttps: status.https?.port === ports.routerHttps ? 0 : ports.routerHttps };
}

async function stopProcess(dataDir: string, pid: number): Promise<void> {
  await call(routerSocket(dataDir), 'POST', '/stop').catch(() => undefined);
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await sleep(50);
  }
}

/** Stop the router process serving `dataDir`, if one runs; resolves to whether there was one, once it is gone. */
export async function stopRouterProcess(dataDir: string): Promise<boolean> {
  const status = await findRouter(dataDir);
  if (status) await stopProcess(dataDir, status.pid);
  return status !== null;
}

function childScript(): string[] {
  const here = import.meta.url;
  const ext = here.endsWith('.ts') ? '.ts' : '.js';
  const script = fileURLToPath(new URL(`./router-child${ext}`, here));
  return ext === '.ts' ? ['--import', 'tsx', script] : [script];
}

async function spawnRouter(options: DetachedRouterOptions): Promise<RouterStatus> {
  const { dataDir } = options;
  const config: RouterChildConfig = {
    socket: routerSocket(dataDir),
    http: options.http,
    https: options.https,
    certDir: options.certDir,
    certNames: options.certNames,
    stickyKey: options.stickyKey,
    ...(options.engine !== undefined ? { engine: options.engine } : {}),
    logLevel: 'info',
    snapshotFile: join(dataDir, 'router-snapshot.json'),
    ...(options.staleGraceMs === undefined ? {} : { staleGraceMs: options.staleGraceMs }),
    ...(options.accessLog === undefined ? {} : { accessLog: options.accessLog }),
    ...(options.metrics === undefined ? {} : { metrics: options.metrics }),
  };
  await writeFileAtomic(routerConfigFile(dataDir), JSON.stringify(config), { mode: 0o600 });
  return spawnFromConfig(dataDir, config);
}

/** Spawn `node router-child <dataDir>/router.json` and wait until it answers on its socket. */
async function spawnFromConfig(dataDir: string, config: Pick<RouterChildConfig, 'http' | 'https' | 'metrics'>): Promise<RouterStatus> {
  const logFile = join(dataDir, 'router.log');
  const log = openSync(logFile, 'a', 0o600);
  // Its own process group: a Ctrl-C in the terminal of `npm start` does not reach it.
  const child = spawn(process.execPath, [...childScript(), routerConfigFile(dataDir)], { detached: true, stdio: ['ignore', log, log] });
  closeSync(log);
  let exit: number | null | undefined;
  child.once('exit', (code, signal) => (exit = code ?? (signal ? 1 : 0)));
  child.unref();
  const deadline = Date.now() + ROUTER_PROCESS_DEFAULTS.startTimeoutMs;
  for (;;) {
    const status = await findRouter(dataDir);
    if (status && status.pid === child.pid) return status;
    if (exit !== undefined) {
      if (exit === 3) throw new BootstrapPortInUseError('router', config.http.host, config.http.port);
      if (exit === 4) throw new BootstrapPortInUseError('routerHttps', config.https.host, config.https.port);
      if (exit === 5 && config.metrics) throw new BootstrapPortInUseError('routerMetrics', config.metrics.host, config.metrics.port);
      const tail = (await readFile(logFile, 'utf8').catch(() => '')).trim().split('\n').slice(-3).join(' | ');
      throw new UnavailableError(BootstrapErrorCodes.NOT_READY, `the router process exited with ${exit} (see ${logFile}): ${tail}`);
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new UnavailableError(BootstrapErrorCodes.NOT_READY, `the router process did not answer within ${ROUTER_PROCESS_DEFAULTS.startTimeoutMs} ms (see ${logFile})`);
    }
    await sleep(25);
  }
}

/** Run `spawn` as the one spawn in flight for `dataDir`. */
function spawnOnce<T>(dataDir: string, start: () => Promise<T>): Promise<T> {
  const run = start();
  const settled = run.catch(() => undefined).finally(() => {
    if (spawning.get(dataDir) === settled) spawning.delete(dataDir);
  });
  spawning.set(dataDir, settled);
  return run;
}

/**
 * Start the router process of `dataDir` again from the config it last ran with (`router.json`),
 * when it has one and none answers: the apps are served from its last snapshot before the platform
 * has loaded. Resolves to the running router, or null when the data dir has no saved router. A
 * later {@link startDetachedRouter} on the data dir waits for this spawn and re-attaches to it.
 * Never throws: a router that cannot start is left to the platform's own start, which says why.
 */
export function startSavedRouter(dataDir: string): Promise<RouterStatus | null> {
  return spawnOnce(dataDir, async () => {
    const running = await findRouter(dataDir);
    if (running) return running;
    let config: RouterChildConfig;
    try {
      config = JSON.parse(await readFile(routerConfigFile(dataDir), 'utf8')) as RouterChildConfig;
      // A router stopped on purpose removed its snapshot: it is not wanted before the platform says so.
      if (!config.snapshotFile) return null;
      await access(config.snapshotFile);
    } catch {
      return null;
    }
    return spawnFromConfig(dataDir, config);
  }).catch(() => null);
}

/**
 * Follow the router process serving `dataDir` over a control connection held open: resolves with
 * `gone` when it closes (the process died or stopped), or `unsupported` when the router cannot be
 * followed (one started by an older flynn-ts). Rejects when `signal` aborts.
 */
export function followRouter(dataDir: string, signal: AbortSignal): Promise<'gone' | 'unsupported'> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: routerSocket(dataDir), method: 'GET', path: '/follow', signal }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return resolve('unsupported');
      }
      res.resume();
      res.on('error', () => undefined);
      res.once('close', () => (signal.aborted ? reject(signal.reason) : resolve('gone')));
    });
    req.once('error', (err) => (signal.aborted ? reject(err) : resolve('gone')));
    req.end();
  });
}

/**
 * Re-attach to the router process serving `options.dataDir` when it listens where asked, else
 * (none, or on other ports: that one is stopped) spawn one, detached, that outlives this process.
 * @throws {BootstrapPortInUseError} when its port is taken by something else.
 */
export async function startDetachedRouter(options: DetachedRouterOptions): Promise<DetachedRouter> {
  const { dataDir, logger } = options;
  // A router spawned from the saved config (startSavedRouter) is awaited, then re-attached to.
  await spawning.get(dataDir);
  let status = await findRouter(dataDir);
  const reattached = status !== null && routerMatches(status, options);
  if (status && !reattached) {
    logger.info('stopping the router process listening elsewhere or logging otherwise', { pid: status.pid, http: status.http.url });
    await stopProcess(dataDir, status.pid);
  }
  if (!reattached) status = await spawnOnce(dataDir, () => spawnRouter(options));
  let running = status as RouterStatus;
  logger.info(reattached ? 're-attached to the router process' : 'started the router process', { pid: running.pid, http: running.http.url });
  const socket = routerSocket(dataDir);
  return {
    get pid() {
      return running.pid;
    },
    http: running.http,
    https: running.https ?? undefined,
    get metrics() {
      return running.metrics ?? undefined;
    },
    reattached,
    async push(snapshot) {
      const { status: code, text } = await call(socket, 'PUT', '/snapshot', snapshot);
      if (code !== 204) throw new UnavailableError(BootstrapErrorCodes.NOT_READY, `the router process refused a snapshot (${code}): ${text}`);
    },
    async respawn() {
      // One that answers already (started by another start meanwhile) is taken as it is.
      const { http, https, metrics } = running;
      const again = {
        ...options,
        http: { host: http.host, port: http.port },
        https: https ? { host: https.host, port: https.port } : options.https,
        ...(metrics ? { metrics: { host: metrics.host, port: metrics.port } } : {}),
      };
      running = (await findRouter(dataDir)) ?? (await spawnOnce(dataDir, () => spawnRouter(again)));
      return running.pid;
    },
    stop: () => stopProcess(dataDir, running.pid),
  };
}
