import { CloseGuard, settlesWithin, sleep, type Closable } from '../common/lifecycle.js';
import { silentLogger } from '../common/logger.js';
import { BackendRegistry } from './backends.js';
import { selfSignedCertificate } from './certificate.js';
import type { Engine, EngineListen, RouterCore } from './engine.js';
import { startHaproxyEngine } from './haproxy/engine.js';
import { startNodeEngine } from './node-engine.js';
import { startNodeWorkers } from './node-workers.js';
import { routerConfig, type RouterOptions } from './options.js';
import { RouterMetrics, serveMetrics } from './metrics.js';
import { OutlierDetector } from './outlier.js';
import { RouteApplier } from './route-applier.js';
import type { RouteSource } from './route-source.js';
import { HttpRouteTable } from './route-table.js';
import type { Route } from './types.js';

export type { ListenAddress, RouterOptions, HaproxyOptions } from './options.js';

export interface BoundAddress {
  host: string;
  port: number;
  /** e.g. `http://127.0.0.1:8080`. */
  url: string;
}

/** A running router. */
export interface Router extends Closable {
  readonly http: BoundAddress;
  readonly https: BoundAddress | undefined;
  /** The metrics listener (`GET /metrics`), when the router serves one. */
  readonly metrics: BoundAddress | undefined;
  /** The data plane in use. */
  readonly engine: 'node' | 'haproxy';
  /** The routes in force, as last received from the route source. */
  routes(): Route[];
  /** Requests (and upgraded connections) being served right now. */
  inFlight(): number;
  /** Resolves once the router applied every route event received so far (the data plane included; handy in tests). */
  settled(): Promise<void>;
}

/** Follow the route source into the applier until `signal` aborts, watching again after a loss; `first` runs on the first table. */
async function followRoutes(source: RouteSource, applier: RouteApplier, core: RouterCore, signal: AbortSignal, first: () => void): Promise<void> {
  const { logger, config } = core;
  while (!signal.aborted) {
    try {
      for await (const event of source.watch({ signal })) {
        await applier.apply(event);
        if (event.type === 'current') first();
      }
      if (signal.aborted) return;
      logger.warn('route watch ended; watching again');
    } catch (err) {
      if (signal.aborted) return;
      logger.warn('route watch failed; watching again', { error: (err as Error).message });
    }
    try {
      await sleep(config.rewatchDelayMs, signal);
    } catch {
      return;
    }
  }
}

/** The router's metrics, with its worker processes' counts added when it has workers. */
async function metricsText(own: RouterMetrics, engine: Engine): Promise<string> {
  const workers = (await engine.workerMetrics?.()) ?? [];
  if (workers.length === 0) return own.text();
  const all = new RouterMetrics();
  all.add(own.snapshot());
  for (const snapshot of workers) all.add(snapshot);
  return all.text();
}

/** Start the router: bind its listeners, follow routes and backends, and serve until `close()`. */
export async function startRouter(options: RouterOptions): Promise<Router> {
  const config = routerConfig(options);
  const logger = (options.logger ?? silentLogger).child({ component: 'router' });
  const backends = new BackendRegistry({ discovery: options.discovery, logger, ...config });
  const table = new HttpRouteTable();
  const metrics = config.metrics && config.engine === 'node' ? new RouterMetrics() : undefined;
  const health = new OutlierDetector({ logger, ...config, counters: metrics });
  const applier = new RouteApplier({ table, backends, health, logger, ...config, tcpInEngine: config.engine === 'haproxy' });
  const core: RouterCore = { config, logger, backends, table, applier, health };
  const where: EngineListen = {
    http: options.http,
    ...(options.https ? { https: { addr: options.https, defaultCertificate: options.defaultCertificate ?? (await selfSignedCertificate(['localhost', '127.0.0.1'])) } } : {}),
  };
  // The routes and backends known at start are loaded before the engine listens, so that its first answers route them.
  const stopWatch = new AbortController();
  let firstResolve!: () => void;
  const first = new Promise<void>((resolve) => (firstResolve = resolve));
  void followRoutes(options.routes, applier, core, stopWatch.signal, firstResolve);
  await first;
  await settlesWithin(Promise.all(backends.services().map((s) => backends.get(s)?.ready)), config.backendsReadyTimeoutMs);
  let engine: Engine | undefined;
  let admin: Awaited<ReturnType<typeof serveMetrics>> | undefined;
  try {
    engine =
      config.engine === 'haproxy'
        ? await startHaproxyEngine(core, where)
        : config.workers > 1
          ? await startNodeWorkers(core, where, config.workers)
          : await startNodeEngine({ ...core, metrics, certificate: (name) => applier.certificate(name) }, where);
    const started = engine;
    admin = metrics && config.metrics ? await serveMetrics(config.metrics, () => metricsText(metrics, started)) : undefined;
  } catch (err) {
    // Nothing is left behind: no listener, no route watch, no discovery watch.
    stopWatch.abort();
    await engine?.close();
    await applier.close();
    backends.close();
    throw err;
  }

  const guard = new CloseGuard('router');
  const shutdown = async () => {
    stopWatch.abort();
    await engine.stopAccepting();
    await applier.stopTcp();
    await settlesWithin(Promise.all([engine.whenIdle(), applier.tcpIdle()]), config.drainTimeoutMs);
    await engine.close();
    admin?.server.close();
    await applier.close();
    backends.close();
    logger.info('router closed');
  };

  await applier.settled();
  logger.info('router listening', { engine: config.engine, http: `${options.http.host}:${engine.httpPort}`, ...(options.https ? { https: `${options.https.host}:${engine.httpsPort}` } : {}) });

  const bound = (host: string, port: number, scheme: string): BoundAddress => ({ host, port, url: `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}` });
  return {
    engine: config.engine,
    http: bound(options.http.host, engine.httpPort, 'http'),
    metrics: options.metrics ? bound(options.metrics.host, admin?.port ?? engine.metricsPort ?? 0, 'http') : undefined,
    https: options.https && engine.httpsPort !== undefined ? bound(options.https.host, engine.httpsPort, 'https') : undefined,
    routes: () => [...applier.current.values()],
    inFlight: () => engine.inFlight(),
    settled: () => applier.settled(),
    close: () => guard.close(shutdown),
    [Symbol.asyncDispose]() {
      return guard.close(shutdown);
    },
  };
}
