/**
 * The one-process single-node cluster (`npm start`, through main.ts): discovery, a host agent, the scheduler,
 * shelf, the controller, the router and the git receiver. Maps flags/env to options, prints how to
 * add the cluster to the CLI and push to it. State lives in a persistent data dir (the controller's
 * store, keys, repos, slugs): started again on it, the cluster has every app back. SIGINT/SIGTERM
 * stop the platform; the apps' containers or processes keep running and are adopted by the next start
 * (`--stop-apps-on-exit` stops them too; `--ephemeral` uses a temp data dir and stops everything).
 *
 *   npm start -- [--runtime auto|docker|process] [--build-network bridge|host|none] [--image IMAGE]
 *     [--data-dir DIR | --ephemeral] [--from-backup FILE] [--stop-apps-on-exit] [--router detached|inline] [--router-engine node|haproxy] [--domain D] [--host 127.0.0.1]
 *     [--router-access-log json|combined] [--router-access-log-file FILE] [--router-metrics-port N]
 *     [--controller-port 8081] [--router-port 8080] [--router-https-port 8443] [--git-port 2222] [--shelf-port 8082]
 *     [--discovery memory|etcd --etcd http://127.0.0.1:2379 --etcd-prefix /flynn-ts] [--verbose]
 *     [--acme-directory URL] [--acme-email EMAIL] [--acme-ca FILE] [--acme-renew-before-days 30]
 *
 * Builds run in the stack image (`npm run images` builds it) when it is there, else in the slim
 * runtime image, and reach the network (HTTP(S)_PROXY/NO_PROXY of this process are passed on).
 * `npm start -- --help` lists every flag with its env twin and default. A busy port stops the start
 * with one line naming the component, the port and the flag to pick another (exit 1, nothing left
 * running); a bad command line exits 2.
 */
import { readFileSync } from 'node:fs';
import { BUILD_NETWORKS, PLATFORM_DEFAULTS, serverAddArgs, startCluster, type Cluster } from '../../src/bootstrap/index.js';
import { ACME_DEFAULTS, LETS_ENCRYPT_DIRECTORY } from '../../src/acme/index.js';
import { createConsoleLogger } from '../../src/common/logger.js';
import { ETCD_DISCOVERY_DEFAULTS } from '../../src/discovery/etcd-backend.js';
import { RUNTIME_IMAGE_DEFAULTS } from '../../src/host/runtime-image.js';
import { STACK_IMAGE_DEFAULTS } from '../../src/host/stack-image.js';
import { proxyEnv } from '../shared/build-env.js';
import { parseCli, startFailure } from '../shared/cli-args.js';
import { ROUTER_LOG_FLAGS, routerLogLines, routerLogOptions } from '../shared/router-flags.js';
import { ETCD_CREDENTIAL_FLAGS, ETCD_CREDENTIAL_NOTES, etcdCredentialsOf } from '../shared/etcd-flags.js';
import { clusterName, defaultDataDir } from './data-dir.js';

const cli = parseCli({
  name: 'flynn-ts',
  usage: 'npm start -- [flags]   (or: node --import tsx examples/cluster/main.ts [flags])',
  summary: 'Start a whole flynn-ts cluster in this process: discovery, a host agent, scheduler, shelf,\ncontroller, router and git receiver. Its state is kept in a data dir; Ctrl-C stops the platform,\nthe apps keep running (containers or processes) and the next start on the same data dir has everything back.',
  flags: {
    runtime: { type: 'string', value: 'auto|docker|process', env: 'FLYNN_RUNTIME', default: 'auto', help: 'where jobs and builds run (auto: Docker when it answers)' },
    'build-network': { type: 'string', value: 'bridge|host|none', env: 'FLYNN_BUILD_NETWORK', default: PLATFORM_DEFAULTS.buildNetwork, help: 'network of build containers (none: isolated builds)' },
    image: { type: 'string', value: 'IMAGE', env: 'FLYNN_IMAGE', help: `image builds and jobs run in (default: ${STACK_IMAGE_DEFAULTS.latest} when built, else ${RUNTIME_IMAGE_DEFAULTS.latest})` },
    'data-dir': { type: 'string', value: 'DIR', env: 'FLYNN_DATA_DIR', help: 'controller state, keys, git repos, slugs, jobs (default: $XDG_DATA_HOME/flynn-ts/<name>, else ~/.local/share/flynn-ts/<name>; <name> is local, or local-<controller port> off 8081)' },
    'from-backup': { type: 'string', value: 'FILE', help: 'start from a `flynn cluster backup` tar: its apps, git repos, slugs and keys, restored into a new data dir' },
    ephemeral: { type: 'boolean', env: 'FLYNN_EPHEMERAL', help: 'a temp data dir removed on exit; the apps stop with the cluster' },
    'stop-apps-on-exit': { type: 'boolean', env: 'FLYNN_STOP_APPS_ON_EXIT', help: "Ctrl-C/SIGTERM also stop the apps (default: only the platform stops, the apps' containers or processes keep running)" },
    router: { type: 'string', value: 'detached|inline', env: 'FLYNN_ROUTER_PROCESS', default: 'detached', help: 'detached: the router is a process of its own that serves on while the platform is down or restarting (inline: in this process; --ephemeral is always inline)' },
    'router-engine': { type: 'string', value: 'node|haproxy', env: 'FLYNN_ROUTER_ENGINE', default: 'node', help: "the router's data plane: node, or haproxy (HAProxy >= 2.6 on PATH, driven live; docs/router.md#engines)" },
    ...ROUTER_LOG_FLAGS,
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
    ...ETCD_CREDENTIAL_FLAGS,
    'tls-cert': { type: 'string', value: 'FILE', env: 'FLYNN_TLS_CERT', help: "controller's PEM certificate (default: self-signed, kept in the data dir)" },
    'tls-key': { type: 'string', value: 'FILE', env: 'FLYNN_TLS_KEY', help: "controller's PEM private key, with --tls-cert" },
    'insecure-http': { type: 'boolean', help: 'serve the controller over plain HTTP (key and env in clear)' },
    'acme-directory': { type: 'string', value: 'URL', env: 'FLYNN_ACME_DIRECTORY', default: LETS_ENCRYPT_DIRECTORY, help: 'ACME directory of the CA that issues certificates for routes added with --acme (a private CA\'s, or Let\'s Encrypt staging to try)' },
    'acme-email': { type: 'string', value: 'EMAIL', env: 'FLYNN_ACME_EMAIL', help: 'contact email of the ACME account (the CA writes about expiring certificates)' },
    'acme-ca': { type: 'string', value: 'FILE', env: 'FLYNN_ACME_CA', help: "PEM CA bundle trusted for the ACME directory's HTTPS (a private CA's; default: node's roots)" },
    'acme-renew-before-days': { type: 'string', value: 'N', env: 'FLYNN_ACME_RENEW_BEFORE_DAYS', default: String(ACME_DEFAULTS.renewBeforeDays), help: 'renew ACME certificates when fewer days than this remain' },
    'allow-file-git-urls': { type: 'boolean', env: 'FLYNN_ALLOW_FILE_GIT_URLS', help: "let flynn deploy-git fetch file:// URLs (this host's disk) when --host is not loopback (on loopback they are allowed)" },
    verbose: { type: 'boolean', short: 'v', help: 'debug logs' },
  },
  notes: `environment without a flag:\n  CONTROLLER_KEY   the cluster key (default: kept in <data dir>/controller-key, generated the first time)\n${ETCD_CREDENTIAL_NOTES}`,
});
const { values } = cli;
const runtime = cli.oneOf('runtime', ['auto', 'docker', 'process'] as const);
const buildNetwork = cli.oneOf('build-network', BUILD_NETWORKS);
const discovery = cli.oneOf('discovery', ['memory', 'etcd'] as const);
const routerProcess = cli.oneOf('router', ['detached', 'inline'] as const);
const routerEngine = cli.oneOf('router-engine', ['node', 'haproxy'] as const);
const routerLog = routerLogOptions(cli);
const ports = { controller: cli.port('controller-port'), router: cli.port('router-port'), routerHttps: cli.port('router-https-port'), git: cli.port('git-port'), shelf: cli.port('shelf-port') };
if (values.ephemeral && values['data-dir']) cli.fail('--ephemeral and --data-dir exclude each other');
// The CLI's name for it: `local` on the default ports; a cluster beside it gets a name (and a data dir) of its own.
const dataDir = values.ephemeral ? undefined : (values['data-dir'] ?? defaultDataDir(clusterName(ports.controller, PLATFORM_DEFAULTS.controllerPort), process.env));
// Ephemeral data goes with the process, so its apps do too.
const stopApps = values.ephemeral || values['stop-apps-on-exit'];
if (dataDir !== undefined && ports.shelf === 0) {
  console.error("flynn-ts: warning: --shelf-port 0 on a kept data dir: releases record the shelf's URL, so after a restart on another port their slugs are not found (use a fixed port, or --ephemeral)");
}

const etcdCredentials = etcdCredentialsOf(values, process.env.ETCD_PASSWORD, cli.fail);
const tlsFiles = [values['tls-cert'], values['tls-key']];
if (tlsFiles.filter(Boolean).length === 1) cli.fail('--tls-cert and --tls-key go together');
const tls = tlsFiles[0] && tlsFiles[1] ? readTls(tlsFiles[0], tlsFiles[1]) : undefined;

const renewBeforeDays = cli.integer('acme-renew-before-days', 0) ?? ACME_DEFAULTS.renewBeforeDays;
const acmeCa = values['acme-ca'] ? readPem(values['acme-ca']) : undefined;
const acme = { directoryUrl: values['acme-directory'], renewBeforeDays, ...(values['acme-email'] ? { email: values['acme-email'] } : {}), ...(acmeCa ? { ca: acmeCa } : {}) };

const logger = createConsoleLogger({ level: values.verbose ? 'debug' : 'warn' });
let cluster: Cluster;
try {
  cluster = await startCluster({
    runtime,
    buildNetwork,
    buildEnv: proxyEnv(),
    ...(values.image ? { image: values.image } : {}),
    ...(dataDir !== undefined ? { dataDir } : {}),
    stopAppsOnClose: stopApps,
    ...(values['from-backup'] ? { fromBackup: values['from-backup'] } : {}),
    // The router outlives the platform: a restart is no outage of the apps.
    detachedRouter: dataDir !== undefined && routerProcess === 'detached',
    routerEngine,
    ...routerLog,
    ...(process.env.CONTROLLER_KEY ? { key: process.env.CONTROLLER_KEY } : {}),
    ...(tls ? { tls } : {}),
    ...(values['insecure-http'] ? { insecureHttp: true } : {}),
    ...(values['allow-file-git-urls'] ? { allowFileGitUrls: true } : {}),
    domain: values.domain,
    acme,
    host: values.host,
    ports,
    discovery:
      discovery === 'etcd'
        ? { backend: 'etcd', endpoints: values.etcd.split(',').map((e) => e.trim()).filter(Boolean), prefix: values['etcd-prefix'], ...(etcdCredentials ? { credentials: etcdCredentials } : {}) }
        : { backend: 'memory' },
    logger,
    onProgress: (line) => console.log(`-----> ${line}`),
    // With --verbose each part's start, timed from this process's start (module loading included).
    ...(values.verbose ? { onStep: (s: { step: string; message: string }) => console.log(`-----> +${Math.round(performance.now())} ms ${s.step}: ${s.message}`) } : {}),
  });
} catch (err) {
  // startCluster has closed whatever it had started.
  console.error(`flynn-ts: ${startFailure(err, { controller: '--controller-port N', router: '--router-port N', routerHttps: '--router-https-port N', routerMetrics: '--router-metrics-port N', git: '--git-port N', shelf: '--shelf-port N' })}`);
  process.exit(1);
}

// Before the banner: whoever waits for it (a user, a test, a supervisor) may signal at once.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.log(`\n-----> ${signal}: stopping the ${stopApps ? 'cluster and its apps' : 'platform'}`);
    void cluster.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(`flynn-ts: ${(err as Error).message}`);
        process.exit(1);
      },
    );
  });
}

const cliName = clusterName(new URL(cluster.controllerUrl).port, PLATFORM_DEFAULTS.controllerPort);
const onExit = stopApps
  ? 'Ctrl-C stops the cluster and its apps.'
  : `Ctrl-C stops the platform; the apps' ${cluster.runtime === 'docker' ? 'containers' : 'processes'}${routerProcess === 'detached' ? ' and the router keep serving' : ' keep running'}, and the next
\`npm start\` on ${cluster.dataDir} adopts them. --stop-apps-on-exit stops them too.`;
console.log(`
flynn-ts cluster up (${cluster.runtime} runtime${cluster.image ? ` on ${cluster.image}` : ''}, STACK=${cluster.stack ?? '-'}, build network ${buildNetwork}, data in ${cluster.dataDir}${values.ephemeral ? ', removed on exit' : ''})
  controller  ${cluster.controllerUrl}${cluster.controllerPin === null ? '   (plain HTTP)' : `   certificate pin ${cluster.controllerPin}`}
  router      ${cluster.routerUrl}   (apps at http://<app>.${cluster.domain}:${cluster.routerPort})
  https       ${cluster.routerHttpsUrl}   (apps at https://<app>.${cluster.domain}:${cluster.routerHttpsPort}; self-signed unless the route has a certificate)${routerLogLines(cluster)}
  git         ssh://git@${cluster.gitHost}   host key ${cluster.gitFingerprint}
  shelf       ${cluster.shelfUrl}${discovery === 'etcd' ? `\n  more hosts  FLYNN_HOST_KEY=${cluster.hostAgentKey} node --import tsx examples/host/main.ts --discovery etcd --etcd-prefix ${values['etcd-prefix']}` : ''}

Add it to the CLI and push an app:

  flynn ${serverAddArgs(cluster, cliName).join(' ')}
  flynn key-add
  cd myapp && flynn create myapp
  git push flynn main
  curl -H 'Host: myapp.${cluster.domain}' ${cluster.routerUrl}/

${onExit}
`);

function readTls(certFile: string, keyFile: string): { cert: string; key: string } {
  try {
    return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
  } catch (err) {
    return cli.fail(`cannot read --tls-cert/--tls-key: ${(err as Error).message}`);
  }
}

function readPem(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    return cli.fail(`cannot read --acme-ca ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
