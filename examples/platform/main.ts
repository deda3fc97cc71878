/**
 * The platform daemon for multi-machine use: scheduler, shelf, controller (etcd store), router and
 * git receiver on etcd discovery, with no host agent of its own — run `examples/host/main.ts
 * --discovery etcd` on each machine and they join through etcd.
 *
 *   CONTROLLER_KEY=secret npx tsx examples/platform/main.ts --etcd http://127.0.0.1:2379 [--prefix /flynn-ts]
 *     [--host 127.0.0.1] [--data-dir DIR] [--domain D] [--build docker|process|auto]
 *     [--controller-port 8081] [--router-port 8080] [--git-port 2222] [--shelf-port 8082]
 *
 * Env twins: ETCD_ENDPOINTS, FLYNN_ETCD_PREFIX, FLYNN_DATA_DIR, FLYNN_DOMAIN. Shelf must be reachable
 * from every host at its URL (the hosts download slugs from it).
 */
import { parseArgs } from 'node:util';
import { startCluster, type ClusterRuntime } from '../../src/bootstrap/index.js';
import { createConsoleLogger } from '../../src/common/logger.js';
import { EtcdStore } from '../../src/controller/index.js';

const { values } = parseArgs({
  options: {
    etcd: { type: 'string', default: process.env.ETCD_ENDPOINTS ?? 'http://127.0.0.1:2379' },
    prefix: { type: 'string', default: process.env.FLYNN_ETCD_PREFIX ?? '/flynn-ts' },
    host: { type: 'string', default: '127.0.0.1' },
    'data-dir': { type: 'string', default: process.env.FLYNN_DATA_DIR },
    domain: { type: 'string', default: process.env.FLYNN_DOMAIN ?? 'flynn.local' },
    build: { type: 'string', default: 'auto' },
    'controller-port': { type: 'string', default: '8081' },
    'router-port': { type: 'string', default: '8080' },
    'git-port': { type: 'string', default: '2222' },
    'shelf-port': { type: 'string', default: '8082' },
  },
});
const fail = (msg: string): never => {
  console.error(`platform: ${msg}`);
  process.exit(2);
};
const portOf = (name: string, v: string | undefined): number => {
  const n = Number(v);
  return Number.isInteger(n) && n >= 0 && n <= 65535 ? n : fail(`--${name} must be a port (0-65535), got ${v}`);
};
const key = process.env.CONTROLLER_KEY ?? fail('set CONTROLLER_KEY to the cluster key');
if (!['auto', 'docker', 'process'].includes(values.build)) fail(`--build must be auto, docker or process, got ${values.build}`);

const endpoints = values.etcd.split(',').map((s) => s.trim());
const logger = createConsoleLogger({ level: 'info' });
const store = new EtcdStore({ hosts: endpoints, prefix: `${values.prefix}/controller/` });
const cluster = await startCluster({
  hostAddrs: [],
  runtime: values.build as ClusterRuntime,
  store,
  key,
  host: values.host,
  domain: values.domain,
  discovery: { backend: 'etcd', endpoints, prefix: values.prefix },
  ...(values['data-dir'] ? { dataDir: values['data-dir'] } : {}),
  ports: {
    controller: portOf('controller-port', values['controller-port']),
    router: portOf('router-port', values['router-port']),
    git: portOf('git-port', values['git-port']),
    shelf: portOf('shelf-port', values['shelf-port']),
  },
  logger,
});
logger.info('platform ready', { controller: cluster.controllerUrl, router: cluster.routerUrl, git: cluster.gitHost, shelf: cluster.shelfUrl, gitFingerprint: cluster.gitFingerprint });
console.log(`\nhosts: start host agents on the same etcd (discovery prefix ${values.prefix}), e.g. startHostAgent with createDiscovery({ backend: "etcd", ... })`);
console.log(`cli:   flynn server-add -g ${cluster.gitHost} prod ${cluster.controllerUrl} $CONTROLLER_KEY\n`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    logger.info('shutting down', { signal });
    void cluster
      .close()
      .then(() => store.close())
      .then(() => process.exit(0));
  });
}
