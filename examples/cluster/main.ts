/**
 * The one-process single-node cluster (`npm start`): discovery, a host agent, the scheduler,
 * shelf, the controller, the router and the git receiver. Maps flags/env to options, prints how to
 * add the cluster to the CLI and push to it, and stops everything on SIGINT/SIGTERM.
 *
 *   npm start -- [--runtime auto|docker|process] [--data-dir DIR] [--domain D] [--host 127.0.0.1]
 *     [--controller-port 8081] [--router-port 8080] [--router-https-port 8443] [--git-port 2222] [--shelf-port 8082]
 *     [--discovery memory|etcd --etcd http://127.0.0.1:2379 --etcd-prefix /flynn-ts] [--verbose]
 *
 * `npm start -- --help` lists every flag with its env twin and default. A busy port stops the start
 * with one line naming the component, the port and the flag to pick another (exit 1, nothing left
 * running); a bad command line exits 2.
 */
import { PLATFORM_DEFAULTS, startCluster, type Cluster } from '../../src/bootstrap/index.js';
import { createConsoleLogger } from '../../src/common/logger.js';
import { ETCD_DISCOVERY_DEFAULTS } from '../../src/discovery/etcd-backend.js';
import { parseCli, startFailure } from '../shared/cli-args.js';

const cli = parseCli({
  name: 'flynn-ts',
  usage: 'npm start -- [flags]   (or: node --import tsx examples/cluster/main.ts [flags])',
  summary: 'Start a whole flynn-ts cluster in this process: discovery, a host agent, scheduler, shelf,\ncontroller, router and git receiver. Ctrl-C stops it and its apps.',
  flags: {
    runtime: { type: 'string', value: 'auto|docker|process', env: 'FLYNN_RUNTIME', default: 'auto', help: 'where jobs and builds run (auto: Docker when it answers)' },
    'data-dir': { type: 'string', value: 'DIR', env: 'FLYNN_DATA_DIR', help: 'shelf blobs, git repos, SSH host key, jobs (default: a temp dir removed on exit)' },
    domain: { type: 'string', value: 'DOMAIN', env: 'FLYNN_DOMAIN', default: PLATFORM_DEFAULTS.domain, help: 'apps answer at <app>.<DOMAIN>' },
    host: { type: 'string', value: 'IP', env: 'FLYNN_LISTEN_HOST', default: PLATFORM_DEFAULTS.host, help: 'address every service listens on' },
    'controller-port': { type: 'string', value: 'N', env: 'FLYNN_CONTROLLER_PORT', default: String(PLATFORM_DEFAULTS.controllerPort), help: 'controller API port (0 = any free port)' },
    'router-port': { type: 'string', value: 'N', env: 'FLYNN_ROUTER_PORT', default: String(PLATFORM_DEFAULTS.routerPort), help: 'router HTTP port (0 = any free port)' },
    'router-https-port': { type: 'string', value: 'N', env: 'FLYNN_ROUTER_HTTPS_PORT', default: String(PLATFORM_DEFAULTS.routerHttpsPort), help: 'router HTTPS port (0 = any free port)' },
    'git-port': { type: 'string', value: 'N', env: 'FLYNN_GIT_PORT', default: String(PLATFORM_DEFAULTS.gitPort), help: 'git (SSH) port (0 = any free port)' },
    'shelf-port': { type: 'string', value: 'N', env: 'FLYNN_SHELF_PORT', default: String(PLATFORM_DEFAULTS.shelfPort), help: 'shelf (blob store) port (0 = any free port)' },
    discovery: { type: 'string', value: 'memory|etcd', env: 'FLYNN_DISCOVERY', default: 'memory', help: 'where services register (etcd: host agents elsewhere can join)' },
    etcd: { type: 'string', value: 'URL[,URL]', env: 'ETCD_ENDPOINTS', default: 'http://127.0.0.1:2379', help: 'etcd endpoints, with --discovery etcd' },
    'etcd-prefix': { type: 'string', value: 'PREFIX', env: 'FLYNN_ETCD_PREFIX', default: ETCD_DISCOVERY_DEFAULTS.prefix, help: 'etcd key prefix, with --discovery etcd (one per cluster on a shared etcd)' },
    verbose: { type: 'boolean', short: 'v', help: 'debug logs' },
  },
  notes: 'environment without a flag:\n  CONTROLLER_KEY   the cluster key (default: generated and printed)',
});
const { values } = cli;
const runtime = cli.oneOf('runtime', ['auto', 'docker', 'process'] as const);
const discovery = cli.oneOf('discovery', ['memory', 'etcd'] as const);
const ports = { controller: cli.port('controller-port'), router: cli.port('router-port'), routerHttps: cli.port('router-https-port'), git: cli.port('git-port'), shelf: cli.port('shelf-port') };

const logger = createConsoleLogger({ level: values.verbose ? 'debug' : 'warn' });
let cluster: Cluster;
try {
  cluster = await startCluster({
    runtime,
    ...(values['data-dir'] ? { dataDir: values['data-dir'] } : {}),
    ...(process.env.CONTROLLER_KEY ? { key: process.env.CONTROLLER_KEY } : {}),
    domain: values.domain,
    host: values.host,
    ports,
    discovery:
      discovery === 'etcd'
        ? { backend: 'etcd', endpoints: values.etcd.split(',').map((e) => e.trim()).filter(Boolean), prefix: values['etcd-prefix'] }
        : { backend: 'memory' },
    logger,
    onProgress: (line) => console.log(`-----> ${line}`),
  });
} catch (err) {
  // startCluster has closed whatever it had started.
  console.error(`flynn-ts: ${startFailure(err, { controller: '--controller-port N', router: '--router-port N', routerHttps: '--router-https-port N', git: '--git-port N', shelf: '--shelf-port N' })}`);
  process.exit(1);
}

// The CLI's name for it: `local` on the default ports; a cluster beside it gets a name of its own.
const controllerPort = new URL(cluster.controllerUrl).port;
const cliName = controllerPort === String(PLATFORM_DEFAULTS.controllerPort) ? 'local' : `local-${controllerPort}`;
console.log(`
flynn-ts cluster up (${cluster.runtime} runtime, data in ${cluster.dataDir})
  controller  ${cluster.controllerUrl}
  router      ${cluster.routerUrl}   (apps at http://<app>.${cluster.domain}:${cluster.routerPort})
  https       ${cluster.routerHttpsUrl}   (apps at https://<app>.${cluster.domain}:${cluster.routerHttpsPort}; self-signed unless the route has a certificate)
  git         ssh://git@${cluster.gitHost}   host key ${cluster.gitFingerprint}
  shelf       ${cluster.shelfUrl}

Add it to the CLI and push an app:

  flynn server-add -f -g ${cluster.gitHost} --git-fingerprint ${cluster.gitFingerprint} ${cliName} ${cluster.controllerUrl} ${cluster.key}
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
        console.error(`flynn-ts: ${(err as Error).message}`);
        process.exit(1);
      },
    );
  });
}
