/**
 * The platform daemon for multi-machine use: scheduler, shelf, controller (etcd store), router and
 * git receiver on etcd discovery, with no host agent of its own — run `examples/host/main.ts
 * --discovery etcd` on each machine and they join through etcd. A flag front-end over the same
 * bootstrap as examples/bootstrap/main.ts (`--manifest FILE` uses a manifest instead of flags).
 *
 *   CONTROLLER_KEY=secret npx tsx examples/platform/main.ts --etcd http://127.0.0.1:2379 [--prefix /flynn-ts]
 *     [--host 127.0.0.1] [--data-dir DIR] [--domain D] [--build docker|process|auto]
 *     [--controller-port 8081] [--router-port 8080] [--git-port 2222] [--shelf-port 8082]
 *     [--router detached|inline] [--router-engine node|haproxy] [--wait-hosts 0] [--json]
 *     [--router-access-log json|combined] [--router-access-log-file FILE] [--router-metrics-port N]
 *   npx tsx examples/platform/main.ts --manifest examples/bootstrap/manifest.yaml
 *
 * `--help` lists every flag with its env twin and default. Shelf must be reachable from every host
 * at its URL (the hosts download slugs from it).
 */
import { loadManifest, PLATFORM_DEFAULTS, validateManifest, type BootstrapManifest } from '../../src/bootstrap/index.js';
import { runBootstrap } from '../bootstrap/run.js';
import { parseCli } from '../shared/cli-args.js';
import { accessLogOf, ROUTER_LOG_FLAGS } from '../shared/router-flags.js';

const cli = parseCli({
  name: 'platform',
  usage: 'node --import tsx examples/platform/main.ts [flags]   (CONTROLLER_KEY must be set unless --manifest)',
  summary: 'Layer 1 for multi-machine use (scheduler, shelf, controller on an etcd store, router, git receiver)\non etcd discovery; run examples/host/main.ts --discovery etcd on each machine to add hosts.',
  flags: {
    manifest: { type: 'string', value: 'FILE', help: 'take everything from this bootstrap manifest instead of the flags' },
    etcd: { type: 'string', value: 'URL[,URL]', env: 'ETCD_ENDPOINTS', default: 'http://127.0.0.1:2379', help: 'etcd endpoints' },
    prefix: { type: 'string', value: 'PREFIX', env: 'FLYNN_ETCD_PREFIX', default: '/flynn-ts', help: "etcd key prefix (the hosts' --etcd-prefix)" },
    host: { type: 'string', value: 'IP', env: 'FLYNN_LISTEN_HOST', default: PLATFORM_DEFAULTS.host, help: 'address every listener binds' },
    'data-dir': { type: 'string', value: 'DIR', env: 'FLYNN_DATA_DIR', help: 'shelf blobs, git repos, SSH host key (default: a temp dir)' },
    domain: { type: 'string', value: 'DOMAIN', env: 'FLYNN_DOMAIN', default: PLATFORM_DEFAULTS.domain, help: 'apps answer at <app>.<DOMAIN>' },
    build: { type: 'string', value: 'auto|docker|process', env: 'FLYNN_RUNTIME', default: 'auto', help: 'where builds run' },
    'controller-port': { type: 'string', value: 'N', env: 'FLYNN_CONTROLLER_PORT', default: String(PLATFORM_DEFAULTS.controllerPort), help: 'controller API port (0 = any free port)' },
    'router-port': { type: 'string', value: 'N', env: 'FLYNN_ROUTER_PORT', default: String(PLATFORM_DEFAULTS.routerPort), help: 'router HTTP port (0 = any free port)' },
    'git-port': { type: 'string', value: 'N', env: 'FLYNN_GIT_PORT', default: String(PLATFORM_DEFAULTS.gitPort), help: 'git (SSH) port (0 = any free port)' },
    'shelf-port': { type: 'string', value: 'N', env: 'FLYNN_SHELF_PORT', default: String(PLATFORM_DEFAULTS.shelfPort), help: 'shelf port, reachable from every host (0 = any free port)' },
    'router-engine': { type: 'string', value: 'node|haproxy', env: 'FLYNN_ROUTER_ENGINE', default: 'node', help: "the router's data plane: node, or haproxy (HAProxy >= 2.6 on PATH, driven live; docs/router.md#engines)" },
    router: { type: 'string', value: 'detached|inline', env: 'FLYNN_ROUTER_PROCESS', default: 'detached', help: 'detached: the router is a process of its own that keeps serving while the platform is down or restarting, and is left running on exit (needs --data-dir; inline without one)' },
    ...ROUTER_LOG_FLAGS,
    'wait-hosts': { type: 'string', value: 'N', default: '0', help: 'start once this many host agents are registered' },
    json: { type: 'boolean', help: 'one JSON object per step instead of text' },
  },
  notes: 'environment without a flag:\n  CONTROLLER_KEY   the cluster key (required without --manifest)',
});
const { values } = cli;
function fail(message: string): never {
  return cli.fail(message);
}

let manifest: BootstrapManifest;
if (values.manifest) {
  manifest = await loadManifest(values.manifest, { env: process.env }).catch((err: Error) => fail(err.message));
} else {
  const key = process.env.CONTROLLER_KEY ?? fail('set CONTROLLER_KEY to the cluster key');
  // The router outlives the platform (docs/decisions.md); it needs a data dir for its socket and state.
  const detached = cli.oneOf('router', ['detached', 'inline'] as const) === 'detached' && values['data-dir'] !== undefined;
  const accessLog = accessLogOf(cli);
  try {
    manifest = validateManifest(
      {
        discovery: { backend: 'etcd', endpoints: values.etcd.split(',').map((s) => s.trim()), prefix: values.prefix },
        key,
        listen: values.host,
        domain: values.domain,
        build: cli.oneOf('build', ['auto', 'docker', 'process'] as const),
        dataDir: values['data-dir'],
        waitHosts: { min: cli.integer('wait-hosts') },
        controller: { port: cli.port('controller-port'), store: { backend: 'etcd', prefix: `${values.prefix}/controller/` } },
        router: {
          port: cli.port('router-port'),
          engine: cli.oneOf('router-engine', ['node', 'haproxy'] as const),
          ...(detached ? { detached: true, keepOnClose: true } : {}),
          ...(accessLog ? { accessLog: { ...accessLog, ...(accessLog.file === null ? { file: '-' } : {}) } } : {}),
          ...(values['router-metrics-port'] === undefined ? {} : { metrics: { port: cli.port('router-metrics-port') } }),
        },
        git: { port: cli.port('git-port') },
        shelf: { port: cli.port('shelf-port') },
      },
      { interpolate: false },
    );
  } catch (err) {
    fail((err as Error).message.replace('invalid bootstrap manifest', 'invalid flags'));
  }
}
const inManifest = (field: string) => `${field}: N in the manifest`;
await runBootstrap(manifest, {
  name: 'platform',
  json: values.json,
  portHint: values.manifest
    ? { controller: inManifest('controller.port'), router: inManifest('router.port'), routerMetrics: inManifest('router.metrics.port'), git: inManifest('git.port'), shelf: inManifest('shelf.port') }
    : { controller: '--controller-port N', router: '--router-port N', routerMetrics: '--router-metrics-port N', git: '--git-port N', shelf: '--shelf-port N' },
});
