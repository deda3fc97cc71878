/**
 * The platform's router: a detached process of its own (found running or spawned, fed snapshots of
 * the store's routes and discovery's backends, started again when it dies), or one in this process.
 */
import { join } from 'node:path';
import { openLogFile, type LogFile } from '../common/log-file.js';
import type { Store } from '../controller/store.js';
import type { Discovery } from '../discovery/discovery.js';
import { clusterCertificate } from '../router/certificate.js';
import { RouterListenError } from '../router/errors.js';
import { startRouter, type Router } from '../router/router.js';
import type { CloseStack } from './close-stack.js';
import { BootstrapInputError, BootstrapPortInUseError } from './errors.js';
import type { PlatformPlan } from './platform-plan.js';
import { listening } from './ports.js';
import { StoreRouteSource } from './route-source.js';
import { feedRouter } from './router-feed.js';
import { superviseRouter } from './router-supervisor.js';
import { startDetachedRouter, type DetachedRouterOptions } from './router-process.js';
import { loadOrCreateStickyKey } from './state-files.js';

/** Where the router listens and serves. */
export type RouterAddresses = Pick<Router, 'http' | 'https' | 'metrics'>;

/** A router whose start has begun: {@link serve} finishes it once the store and discovery are there. */
export interface PendingRouter {
  serve(store: Store, discovery: Discovery): Promise<RouterAddresses>;
}

/** What the detached router of `dataDir` is started with: the same on every start of the platform. */
export async function detachedRouterOptions(plan: Pick<PlatformPlan, 'host' | 'ports' | 'domain' | 'routerEngine' | 'routerAccessLog' | 'routerMetrics' | 'logger'>, dataDir: string): Promise<DetachedRouterOptions> {
  const { host, ports, domain, routerEngine, routerAccessLog, routerMetrics, logger } = plan;
  return {
    dataDir,
    http: { host, port: ports.router },
    https: { host, port: ports.routerHttps },
    // The cluster's default certificate is made once and kept with the data (docs/router.md).
    certDir: join(dataDir, 'router-tls'),
    certNames: [`*.${domain}`, domain, 'localhost', host],
    // Sticky cookies outlive a restart of the router.
    stickyKey: await loadOrCreateStickyKey(dataDir),
    engine: routerEngine,
    ...(routerAccessLog ? { accessLog: routerAccessLog } : {}),
    ...(routerMetrics ? { metrics: routerMetrics } : {}),
    logger,
  };
}

function openAccessLog(file: string): LogFile {
  try {
    return openLogFile(file);
  } catch (err) {
    throw new BootstrapInputError(`cannot open the router access log ${file}: ${(err as Error).message}`, 'routerAccessLog.file');
  }
}

/**
 * Begin the router: a detached router process is found or spawned at once (it loads while the rest
 * of the platform starts), an in-process one starts in {@link PendingRouter.serve}. Whatever starts
 * is pushed on `closers`.
 */
export async function beginRouter(plan: PlatformPlan, dataDir: string, closers: CloseStack): Promise<PendingRouter> {
  const options = await detachedRouterOptions(plan, dataDir);
  const { logger } = plan;
  if (!plan.detachedRouter) {
    return {
      async serve(store, discovery) {
        const { host, ports } = plan;
        const defaultCertificate = await clusterCertificate(options.certDir, options.certNames);
        const { accessLog, metrics } = options;
        const logFile = accessLog?.file ? openAccessLog(accessLog.file) : undefined;
        if (logFile) closers.push(() => logFile.close());
        const router = await listening('router', host, ports.router, () =>
          startRouter({
            discovery,
            routes: new StoreRouteSource(store),
            http: options.http,
            https: options.https,
            defaultCertificate,
            stickyKey: options.stickyKey,
            engine: plan.routerEngine,
            ...(accessLog ? { accessLog: { format: accessLog.format, ...(logFile ? { write: logFile.write } : {}) } } : {}),
            ...(metrics ? { metrics } : {}),
            logger,
          }).catch((err: unknown) => {
            if (err instanceof RouterListenError && err.message.includes('for https')) throw new BootstrapPortInUseError('routerHttps', host, ports.routerHttps, { code: 'EADDRINUSE' });
            if (err instanceof RouterListenError && metrics && err.message.includes('for metrics') && /EADDRINUSE/.test(err.message)) throw new BootstrapPortInUseError('routerMetrics', metrics.host, metrics.port, { code: 'EADDRINUSE' });
            throw err;
          }),
        );
        closers.push(() => router.close());
        return router;
      },
    };
  }
  const starting = startDetachedRouter(options);
  starting.catch(() => undefined);
  closers.push(async () => {
    const detached = await starting.catch(() => undefined);
    if (detached && !plan.keepRouterOnClose) await detached.stop();
  });
  return {
    async serve(store, discovery) {
      const detached = await starting;
      const feed = feedRouter({ routes: new StoreRouteSource(store), discovery, push: (s) => detached.push(s), logger });
      // While the platform runs, a router process that dies is started again and fed the latest snapshot.
      const supervisor = superviseRouter({ router: detached, options, onRespawn: () => feed.resend() });
      closers.push(async () => {
        supervisor.close();
        await feed.close();
      });
      await feed.synced;
      return detached;
    },
  };
}
