/**
 * The controller daemon. Maps flags/env to config, wires a store and the grid, handles signals.
 *
 *   CONTROLLER_KEY=secret npx tsx examples/controller/main.ts --port 8081 [--store etcd --etcd http://127.0.0.1:2379 --prefix /flynn-ts/controller/]
 *     [--tls-dir DIR | --insecure-http]
 *
 * HTTPS by default: a self-signed certificate made once in --tls-dir (default a temp dir, so a new
 * pin every start); the log line `controller ready` gives the URL and the pin for `server-add -p`.
 *
 * The grid (scheduler + host agents) is reached through the controller's `JobRunner` seam. Until
 * the scheduler adapter is wired in, this binary uses the in-process `FakeCluster` (formation jobs
 * are simulated; `flynn run` runs real local processes), which is enough to drive the API and CLI.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConsoleLogger } from '../../src/common/logger.js';
import { loadOrCreateSelfSigned } from '../../src/common/tls/self-signed.js';
import { EtcdStore, MemoryStore, startController, type Store } from '../../src/controller/index.js';
import { FakeCluster } from '../../src/controller/testing/index.js';
import { listenFailure, parseCli } from '../shared/cli-args.js';

const cli = parseCli({
  name: 'controller',
  usage: 'CONTROLLER_KEY=secret node --import tsx examples/controller/main.ts [flags]',
  summary: 'The controller API alone, on a simulated grid (FakeCluster): enough to drive the API and the CLI.',
  flags: {
    host: { type: 'string', value: 'IP', env: 'CONTROLLER_HOST', default: '127.0.0.1', help: 'listen address' },
    port: { type: 'string', value: 'N', env: 'PORT', default: '8081', help: 'listen port (0 = any free port)' },
    store: { type: 'string', value: 'memory|etcd', env: 'CONTROLLER_STORE', default: 'memory', help: 'where apps, releases and formations live' },
    etcd: { type: 'string', value: 'URL[,URL]', env: 'ETCD_ENDPOINTS', default: 'http://127.0.0.1:2379', help: 'etcd endpoints, with --store etcd' },
    prefix: { type: 'string', value: 'PREFIX', env: 'CONTROLLER_ETCD_PREFIX', default: '/flynn-ts/controller/', help: 'etcd key prefix, with --store etcd' },
    'git-host': { type: 'string', value: 'HOST:PORT', env: 'GIT_HOST', help: 'git receiver address the CLI is told' },
    'tls-dir': { type: 'string', value: 'DIR', env: 'CONTROLLER_TLS_DIR', help: 'where the self-signed certificate is made and kept (default: a temp dir)' },
    'insecure-http': { type: 'boolean', help: 'serve plain HTTP (the key and env in clear)' },
  },
  notes: 'environment without a flag:\n  CONTROLLER_KEY   the cluster key (required)',
});
const { values } = cli;
const port = cli.port('port');
const storeKind = cli.oneOf('store', ['memory', 'etcd'] as const);
const key = process.env.CONTROLLER_KEY;
if (!key) {
  console.error('controller: set CONTROLLER_KEY to the cluster key');
  process.exit(2);
}
const logger = createConsoleLogger({ level: 'info' });
const store: Store = storeKind === 'etcd' ? new EtcdStore({ hosts: values.etcd.split(','), prefix: values.prefix }) : new MemoryStore();

const tls = values['insecure-http'] ? undefined : await loadOrCreateSelfSigned({ dir: values['tls-dir'] ?? (await mkdtemp(join(tmpdir(), 'flynn-ts-controller-tls-'))), name: 'controller-tls', hosts: [values.host] });
const controller = await startController({
  key,
  ...(tls ? { tls } : {}),
  store,
  jobs: new FakeCluster({ store }),
  host: values.host,
  port,
  logger,
  ...(values['git-host'] ? { gitHost: values['git-host'] } : {}),
}).catch(async (err: unknown) => {
  await store.close().catch(() => {});
  console.error(`controller: ${listenFailure(err, 'controller', `${values.host}:${port}`, '--port N (0 = any free port)') ?? (err as Error).message}`);
  process.exit(1);
});
// Before the ready line: whoever waits for it may signal at once.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    logger.info('shutting down', { signal });
    void controller
      .close()
      .then(() => store.close())
      .then(() => process.exit(0));
  });
}
logger.info('controller ready', { url: controller.url, pin: controller.pin, store: storeKind });
