import { spawn, spawnSync } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from '../../common/lifecycle.js';
import { accessLogWriter, HAPROXY_ACCESS_MARK } from '../access-log.js';
import type { Engine, EngineListen, RouterCore } from '../engine.js';
import { RouterErrorCodes, RouterInputError, RouterListenError } from '../errors.js';
import { tcpProbe } from '../outlier.js';
import type { ListenAddress } from '../options.js';
import { LiveAcmeAnswers } from './acme.js';
import { pem, LiveCertificates } from './certificates.js';
import { BAD_REQUEST, haproxyConfig, HOP_BY_HOP_LUA, HOST_ERRORS, mapFiles } from './config.js';
import { RuntimeApi, waitForSocket } from './runtime-api.js';
import { EJECT_POLL_MS, ResetEjector } from './ejector.js';
import { MasterCli, ReloadError, reloadHaproxy, writeAtomic } from './reload.js';
import { ServerNames } from './servers.js';
import { SlotSync } from './slots.js';
import { TcpPorts } from './tcp.js';

/** HAProxy 2.6 is the first with everything used here (dynamic servers with checks, `set-timeout`, crt-list commands). */
const MIN_VERSION = [2, 6];

/** Refuse a missing or too old haproxy in one line. */
function checkVersion(bin: string): void {
  const run = spawnSync(bin, ['-v'], { encoding: 'utf8' });
  const m = /version (\d+)\.(\d+)/.exec(run.stdout ?? '');
  if (run.error || !m) throw new RouterInputError(RouterErrorCodes.INVALID_OPTIONS, `engine 'haproxy' needs HAProxy ≥ 2.6: cannot run ${bin} -v (apt-get install haproxy, or set haproxy.bin)`, { field: 'haproxy.bin' });
  const [major, minor] = [Number(m[1]), Number(m[2])];
  if (major < (MIN_VERSION[0] as number) || (major === MIN_VERSION[0] && minor < (MIN_VERSION[1] as number))) {
    throw new RouterInputError(RouterErrorCodes.INVALID_OPTIONS, `engine 'haproxy' needs HAProxy ≥ 2.6, ${bin} is ${major}.${minor}`, { field: 'haproxy.bin' });
  }
}

/**
 * Runs HAProxy's master under a small shell that passes SIGUSR1/SIGTERM on to it and stops it when
 * its stdin (a pipe from this process) ends: a router killed with SIGKILL leaves no HAProxy behind
 * (the master stops its workers, old ones still draining after a reload included).
 */
const WATCHDOG = `exec 3<&0
"$@" </dev/null & pid=$!
trap 'kill -USR1 $pid' USR1
trap 'kill -TERM $pid' TERM
{ read _ <&3; kill -TERM $pid 2>/dev/null; } &
while kill -0 $pid 2>/dev/null; do wait $pid; done`;

/** A port for an address given with port 0 (HAProxy cannot report the one it picked). */
function concretePort(addr: ListenAddress): Promise<ListenAddress> {
  if (addr.port !== 0) return Promise.resolve(addr);
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, addr.host, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve({ host: addr.host, port }));
    });
  });
}

/** Resolves once `addr` refuses connections (HAProxy has let its listener go), or after `ms`. */
async function closedPort(addr: ListenAddress, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!(await tcpProbe(addr.host === '0.0.0.0' ? '127.0.0.1' : addr.host, addr.port, Math.max(1, end - Date.now())))) return;
    await sleep(10);
  }
}

/** Longest wait for a reload's new worker. */
const RELOAD_TIMEOUT_MS = 15_000;

/**
 * The `haproxy` engine: HAProxy (master-worker) as a child process serving the HTTP(S) listeners
 * and the TCP routes, driven live through its Runtime API from the router's route table and
 * discovery watches. It is reloaded only when a TCP port is added or removed or a route needs a
 * slot setting the configuration does not declare (`timeouts.connectMs`, `healthCheck.timeoutMs`),
 * with the whole live state written into the new configuration. Its files (configuration, maps,
 * certificates, sockets) live in a private temp dir.
 */
export async function startHaproxyEngine(core: RouterCore, where: EngineListen): Promise<Engine> {
  const { config, logger, table, backends, applier } = core;
  checkVersion(config.haproxy.bin);
  const dir = await mkdtemp(join(tmpdir(), 'flynn-haproxy-'));
  await chmod(dir, 0o700);
  const socket = join(dir, 'admin.sock');
  const masterSocket = join(dir, 'master.sock');
  const http = await concretePort(where.http);
  const metrics = config.metrics ? await concretePort(config.metrics) : undefined;
  const https = where.https ? { addr: await concretePort(where.https.addr), crtList: join(dir, 'crt-list') } : undefined;
  for (const file of Object.values(mapFiles(dir))) await writeFile(file, '');
  await writeFile(join(dir, 'hop-by-hop.lua'), HOP_BY_HOP_LUA);
  await writeFile(join(dir, '400.http'), BAD_REQUEST);
  await writeFile(join(dir, 'host-error.map'), HOST_ERRORS);
  if (where.https && https) {
    await writeFile(join(dir, 'default.pem'), pem(where.https.defaultCertificate), { mode: 0o600 });
    await writeFile(https.crtList, `${join(dir, 'default.pem')}\n`);
  }
  const cfg = join(dir, 'haproxy.cfg');
  const api = new RuntimeApi(socket);
  const names = new ServerNames();
  const slots = new SlotSync(api, dir, config, backends, names, logger);
  const tcp = new TcpPorts(api, config, backends, names, logger);
  // A router that starts with routes (respawned from its snapshot, restarted with its cluster) binds its listeners only
  // once HAProxy has them all, through a reload after the first sync: until then a client is refused, not told 404.
  let listening = table.routes().length === 0 && applier.tcpRoutes().length === 0;
  const configText = () =>
    haproxyConfig({ dir, socket, http, listening, ...(https ? { https } : {}), ...(metrics ? { metrics } : {}), config, slotLines: (slot) => slots.configLines(slot), tail: tcp.configText(listening) });
  await writeFile(join(dir, 'server-state'), '1\n');
  await writeFile(cfg, configText());

  const child = spawn('sh', ['-c', WATCHDOG, 'sh', config.haproxy.bin, '-W', '-db', '-S', masterSocket, '-f', cfg], { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  // With an access log, HAProxy's stdout carries one line per request.
  const writeAccess = config.accessLog ? accessLogWriter(config.accessLog) : undefined;
  let partial = '';
  if (writeAccess) {
    child.stdout.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (line.startsWith(HAPROXY_ACCESS_MARK)) writeAccess(line.slice(HAPROXY_ACCESS_MARK.length));
        else if (line !== '') logger.debug('haproxy', { line });
      }
    });
  }
  let exitedWith: string | undefined;
  const onOutput = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  };
  if (!writeAccess) child.stdout.on('data', onOutput);
  child.stderr.on('data', onOutput);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exitedWith = `haproxy exited (${signal ?? code})`;
      resolve();
    });
    child.once('error', (err) => {
      exitedWith = `haproxy did not start: ${err.message}`;
      resolve();
    });
  });
  // HAProxy did not start or could not bind: stopped, its files removed, and why in one line.
  const startFailed = async (err: unknown): Promise<never> => {
    child.kill('SIGTERM');
    child.stdin.end();
    await exited;
    await rm(dir, { recursive: true, force: true });
    const bind = /cannot bind socket[^\n]*/i.exec(output)?.[0];
    if (bind) throw new RouterListenError(`cannot listen for http(s) on ${where.http.host}:${http.port}: haproxy: ${bind.trim()}`);
    throw new RouterListenError(`haproxy engine did not start: ${(/\[ALERT\][^\n]*/.exec(output)?.[0] ?? (err as Error).message).trim()}`);
  };
  try {
    await waitForSocket(api, 10_000, () => exitedWith);
  } catch (err) {
    await startFailed(err);
  }
  // Signals go to HAProxy's master itself (not through the watchdog shell), so that a soft stop begins at once.
  const master = new MasterCli(masterSocket);
  const pid = (await master.processes()).master;
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(pid, sig);
    } catch {
      child.kill(sig);
    }
  };
  logger.debug('haproxy started', { pid, dir });

  const certificates = https ? new LiveCertificates(api, dir, https.crtList, logger) : undefined;
  const acme = new LiveAcmeAnswers(api, mapFiles(dir).acme);
  let reloading = false;
  // The live state goes to disk (server states, maps, certificates, then the configuration) and the master reloads.
  const reloadNow = async () => {
    const started = Date.now();
    reloading = true;
    try {
      await writeAtomic(join(dir, 'server-state'), await api.run('show servers state'));
      for (const map of [...Object.values(slots.maps), acme.map]) await writeAtomic(map.file, map.text());
      if (https && certificates) {
        const loaded = certificates.files();
        for (const { file, pem: text } of loaded) await writeAtomic(file, text);
        await writeAtomic(https.crtList, [join(dir, 'default.pem'), ...loaded.map((c) => c.line)].join('\n') + '\n');
      }
      await writeAtomic(cfg, configText());
      const worker = await reloadHaproxy(master, api, RELOAD_TIMEOUT_MS, () => /\[ALERT\][^\n]*/.exec(output.slice(-1500))?.[0]);
      slots.reloaded();
      tcp.reloaded();
      logger.info('haproxy reloaded', { ms: Date.now() - started, worker });
    } finally {
      reloading = false;
    }
  };
  const reload = async () => {
    try {
      await reloadNow();
    } catch (err) {
      if (!(err instanceof ReloadError)) throw err;
      logger.error('haproxy engine: reload failed; the running configuration stays', { error: err.message });
      slots.abandon();
      tcp.abandon();
    }
  };
  // One pass at a time; changes during a pass make one more pass.
  let dirty = false;
  let pass: Promise<void> | undefined;
  let reaper: NodeJS.Timeout | undefined;
  const reconcile = async () => {
    // Start after the change that scheduled this pass is whole: the route table's `set` is a remove then an add, and a
    // pass that read the table in between released the route's slot (404s for a moment on every route update).
    await Promise.resolve();
    while (dirty) {
      dirty = false;
      const routes = table.routes();
      try {
        slots.reserve(routes);
        await tcp.plan(applier.tcpRoutes());
        if (slots.needsReload || tcp.needsReload) await reload();
        await slots.assign(routes);
        await slots.sync(routes);
        await tcp.sync();
        await certificates?.sync(routes);
        await acme.sync(routes);
      } catch (err) {
        logger.warn('haproxy engine: sync failed', { error: (err as Error).message });
      }
    }
    pass = undefined;
    // Removed servers with requests still in flight are deleted once those end.
    if ((slots.draining || tcp.draining) && reaper === undefined && exitedWith === undefined) {
      reaper = setTimeout(() => {
        reaper = undefined;
        schedule();
      }, 200);
    }
  };
  let stopped = false;
  const schedule = () => {
    if (stopped) return;
    dirty = true;
    pass ??= reconcile();
  };
  table.listeners.add(schedule);
  backends.listeners.add(schedule);
  applier.tcpServedBy(schedule);
  const ejector = new ResetEjector(api, { ...config, logger, target: (key) => slots.target(key) });
  // Not while a reload runs: the counters then come from either worker.
  const ejecting = setInterval(() => {
    if (!reloading) void ejector.poll().catch((err: unknown) => logger.debug('haproxy engine: cannot read server counters', { error: (err as Error).message }));
  }, EJECT_POLL_MS);
  ejecting.unref();
  applier.dataPlaneSettled = async () => {
    while (pass) await pass;
  };
  schedule();
  await pass;
  if (!listening) {
    listening = true;
    await reloadNow().catch((err: unknown) => {
      stopFollowing();
      return startFailed(err);
    });
  }

  const stopFollowing = () => {
    stopped = true;
    table.listeners.delete(schedule);
    backends.listeners.delete(schedule);
    clearTimeout(reaper);
    clearInterval(ejecting);
    ejector.stop();
  };
  return {
    httpPort: http.port,
    httpsPort: https?.addr.port,
    ...(metrics ? { metricsPort: metrics.port } : {}),
    // HAProxy counts its own connections (`show info`); this process serves none.
    inFlight: () => 0,
    async stopAccepting() {
      stopFollowing();
      // A reload in progress ends first: the master takes signals again once it runs the new configuration.
      await pass;
      // Soft stop: HAProxy closes its listeners, finishes what is in flight and exits.
      if (exitedWith === undefined) signal('SIGUSR1');
      await closedPort(http, 2000);
    },
    whenIdle: () => exited,
    async close() {
      stopFollowing();
      await pass;
      if (exitedWith === undefined) signal('SIGTERM');
      await exited;
      child.stdin.end();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
