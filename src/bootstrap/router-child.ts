/**
 * The router as a process of its own, started detached by the platform
 * (`node [--import tsx] router-child.(ts|js) <config file>`; see router-process.ts). It serves the
 * routes and backends the platform pushes over a Unix socket in the data dir, and keeps serving the
 * last ones while the platform is down. Its access log file (config `accessLog.file`) is opened
 * again on SIGHUP, after a logrotate moved it. Exit codes: 0 stopped, 1 failed, 3 HTTP port in use,
 * 4 HTTPS port in use, 5 metrics port in use.
 */
import { readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { writeFileAtomic } from '../common/atomic-file.js';
import { openLogFile, type LogFile } from '../common/log-file.js';
import { createConsoleLogger } from '../common/logger.js';
import { clusterCertificate } from '../router/certificate.js';
import { startRouter, type Router } from '../router/router.js';
import { RouterMirror, type RouterSnapshot } from './router-mirror.js';
import type { RouterChildConfig, RouterStatus } from './router-process.js';

const EXIT_HTTP_IN_USE = 3;
const EXIT_HTTPS_IN_USE = 4;
const EXIT_METRICS_IN_USE = 5;

const configFile = process.argv[2];
if (!configFile) {
  process.stderr.write('usage: router-child <config file>\n');
  process.exit(1);
}
const config = JSON.parse(readFileSync(configFile, 'utf8')) as RouterChildConfig;
const logger = createConsoleLogger({ level: config.logLevel, json: true }, { component: 'router' });
const mirror = new RouterMirror(logger, { staleGraceMs: config.staleGraceMs });
const startedAt = new Date().toISOString();

// The last snapshot a platform pushed, kept so that a router started anew (killed, crashed, the
// machine restarted) serves the apps at once, before any platform feeds it.
if (config.snapshotFile) {
  try {
    const saved = JSON.parse(readFileSync(config.snapshotFile, 'utf8')) as RouterSnapshot;
    await mirror.apply(saved);
    logger.info('serving the saved snapshot', { routes: saved.routes.length, session: saved.session });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') logger.warn('cannot read the saved snapshot; waiting for the platform', { error: (err as Error).message });
  }
}

// The config is JSON: the file is opened here, and the router writes its lines to it.
const accessLogFile = config.accessLog?.file ? openAccessLog(config.accessLog.file) : undefined;
if (accessLogFile) process.on('SIGHUP', () => accessLogFile.reopen());

function openAccessLog(file: string): LogFile {
  try {
    return openLogFile(file);
  } catch (err) {
    logger.error('cannot open the access log', { file, error: (err as Error).message });
    process.exit(1);
  }
}

let router: Router;
try {
  router = await startRouter({
    discovery: mirror.discovery,
    routes: mirror.routes,
    http: config.http,
    https: config.https,
    defaultCertificate: await clusterCertificate(config.certDir, config.certNames),
    stickyKey: config.stickyKey,
    ...(config.engine !== undefined ? { engine: config.engine } : {}),
    ...(config.accessLog ? { accessLog: { format: config.accessLog.format, ...(accessLogFile ? { write: accessLogFile.write } : {}) } } : {}),
    ...(config.metrics ? { metrics: config.metrics } : {}),
    logger,
  });
} catch (err) {
  const message = (err as Error).message;
  logger.error('cannot start the router', { error: message });
  const inUse = /EADDRINUSE|address already in use/i.test(message);
  process.exit(inUse ? (message.includes('for https') ? EXIT_HTTPS_IN_USE : message.includes('for metrics') ? EXIT_METRICS_IN_USE : EXIT_HTTP_IN_USE) : 1);
}

let applying = Promise.resolve();
let stopping = false;
/** Platforms following this process (`GET /follow`): their connection closes only when it stops or dies. */
const followers = new Set<ServerResponse>();
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info('stopping: finishing in-flight requests');
  control.close();
  for (const res of followers) res.end();
  await router.close();
  await mirror.close();
  await accessLogFile?.close();
  rmSync(config.socket, { force: true });
  // Stopped on purpose (the apps stop, or the ports change): not to be started again from it.
  if (config.snapshotFile) rmSync(config.snapshotFile, { force: true });
  process.exit(0);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function reply(res: ServerResponse, status: number, body?: unknown): void {
  res.writeHead(status, body === undefined ? {} : { 'content-type': 'application/json' });
  res.end(body === undefined ? undefined : JSON.stringify(body));
}

const control = createServer((req, res) => {
  void (async () => {
    if (req.method === 'GET' && req.url === '/status') {
      const status: RouterStatus = { pid: process.pid, http: router.http, https: router.https ?? null, session: mirror.session, startedAt, routes: router.routes().length, backends: mirror.backends().length, metrics: router.metrics ?? null, accessLog: config.accessLog ?? null };
      return reply(res, 200, status);
    }
    if (req.method === 'PUT' && req.url === '/snapshot') {
      const snapshot = JSON.parse(await readBody(req)) as RouterSnapshot;
      // Snapshots apply one at a time, in the order they came.
      const applied = applying.then(async () => {
        // Applied first: saving it (two fsyncs) does not hold up what the apps' clients see.
        await mirror.apply(snapshot);
        if (config.snapshotFile) await writeFileAtomic(config.snapshotFile, JSON.stringify(snapshot), { mode: 0o600 });
      });
      // A snapshot that failed does not hold up the next one.
      applying = applied.catch(() => undefined);
      await applied;
      await router.settled();
      return reply(res, 204);
    }
    if (req.method === 'GET' && req.url === '/follow') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.flushHeaders();
      followers.add(res);
      res.once('close', () => followers.delete(res));
      return;
    }
    if (req.method === 'POST' && req.url === '/stop') {
      reply(res, 204);
      return stop();
    }
    reply(res, 404, { error: 'not found' });
  })().catch((err: unknown) => {
    logger.error('control request failed', { url: req.url, error: (err as Error).message });
    if (!res.headersSent) reply(res, 500, { error: (err as Error).message });
  });
});

// A socket file left by a router that was killed is in the way; a live one answered the platform first.
rmSync(config.socket, { force: true });
control.listen(config.socket, () => logger.info('serving', { http: router.http.url, https: router.https?.url, metrics: router.metrics?.url, pid: process.pid }));
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void stop());
