/**
 * The one-process single-node cluster (`npm start`): discovery, a host agent, the scheduler,
 * shelf, the controller, the router and the git receiver. Maps flags/env to options, prints how to
 * add the cluster to the CLI and push to it, and stops everything on SIGINT/SIGTERM.
 *
 *   npx tsx examples/cluster/main.ts [--runtime auto|docker|process] [--data-dir DIR] [--domain D]
 *     [--controller-port 8081] [--router-port 8080] [--git-port 2222] [--shelf-port 8082]
 *     [--discovery memory|etcd --etcd http://127.0.0.1:2379]
 *
 * Env: CONTROLLER_KEY (default generated), FLYNN_RUNTIME, FLYNN_DATA_DIR, FLYNN_DOMAIN, ETCD_ENDPOINTS.
 */
import { parseArgs } from 'node:util';
import { startCluster, type ClusterRuntime } from '../../src/bootstrap/index.js';
import { createConsoleLogger } from '../../src/common/logger.js';

const { values } = parseArgs({
  options: {
    runtime: { type: 'string', default: process.env.FLYNN_RUNTIME ?? 'auto' },
    'data-dir': { type: 'string', default: process.env.FLYNN_DATA_DIR },
    domain: { type: 'string', default: process.env.FLYNN_DOMAIN ?? 'flynn.local' },
    'controller-port': { type: 'string', default: '8081' },
    'router-port': { type: 'string', default: '8080' },
    'git-port': { type: 'string', default: '2222' },
    'shelf-port': { type: 'string', default: '8082' },
    discovery: { type: 'string', default: 'memory' },
    etcd: { type: 'string', default: process.env.ETCD_ENDPOINTS ?? 'http://127.0.0.1:2379' },
    verbose: { type: 'boolean', short: 'v', default: false },
  },
});

const fail = (msg: string): never => {
  console.error(`cluster: ${msg}`);
  process.exit(2);
};
const portOf = (name: string, v: string | undefined): number => {
  const n = Number(v);
  return Number.isInteger(n) && n >= 0 && n <= 65535 ? n : fail(`--${name} must be a port (0-65535), got ${v}`);
};
if (!['auto', 'docker', 'process'].includes(values.runtime)) fail(`--runtime must be auto, docker or process, got ${values.runtime}`);
if (values.discovery !== 'memory' && values.discovery !== 'etcd') fail(`--discovery must be memory or etcd, got ${values.discovery}`);

const logger = createConsoleLogger({ level: values.verbose ? 'debug' : 'warn' });
const cluster = await startCluster({
  runtime: values.runtime as ClusterRuntime,
  ...(values['data-dir'] ? { dataDir: values['data-dir'] } : {}),
  ...(process.env.CONTROLLER_KEY ? { key: process.env.CONTROLLER_KEY } : {}),
  domain: values.domain,
  ports: {
    controller: portOf('controller-port', values['controller-port']),
    router: portOf('router-port', values['router-port']),
    git: portOf('git-port', values['git-port']),
    shelf: portOf('shelf-port', values['shelf-port']),
  },
  discovery: values.discovery === 'etcd' ? { backend: 'etcd', endpoints: values.etcd.split(',') } : { backend: 'memory' },
  logger,
  onProgress: (line) => console.log(`-----> ${line}`),
});

console.log(`
flynn-ts cluster up (${cluster.runtime} runtime, data in ${cluster.dataDir})
  controller  ${cluster.controllerUrl}
  router      ${cluster.routerUrl}   (apps at http://<app>.${cluster.domain}:${cluster.routerPort})
  git         ssh://git@${cluster.gitHost}   host key ${cluster.gitFingerprint}
  shelf       ${cluster.shelfUrl}

Add it to the CLI and push an app:

  flynn server-add -g ${cluster.gitHost} --git-fingerprint ${cluster.gitFingerprint} local ${cluster.controllerUrl} ${cluster.key}
  flynn key-add
  cd myapp && flynn create myapp
  git push flynn main
  curl -H 'Host: myapp.${cluster.domain}' ${cluster.routerUrl}/

Ctrl-C stops the cluster and its apps.
`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.log(`\n-----> ${signal}: stopping the cluster`);
    void cluster.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(`cluster: ${(err as Error).message}`);
        process.exit(1);
      },
    );
  });
}
