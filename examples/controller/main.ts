/**
 * The controller daemon. Maps flags/env to config, wires a store and the grid, handles signals.
 *
 *   CONTROLLER_KEY=secret npx tsx examples/controller/main.ts --port 8081 [--store etcd --etcd http://127.0.0.1:2379 --prefix /flynn-ts/controller/]
 *
 * The grid (scheduler + host agents) is reached through the controller's `JobRunner` seam. Until
 * the scheduler adapter is wired in, this binary uses the in-process `FakeCluster` (formation jobs
 * are simulated; `flynn run` runs real local processes), which is enough to drive the API and CLI.
 */
import { parseArgs } from 'node:util';
import { createConsoleLogger } from '../../src/common/logger.js';
import { EtcdStore, MemoryStore, startController, type Store } from '../../src/controller/index.js';
import { FakeCluster } from '../../src/controller/testing/index.js';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: process.env.CONTROLLER_HOST ?? '127.0.0.1' },
    port: { type: 'string', default: process.env.PORT ?? '8081' },
    store: { type: 'string', default: process.env.CONTROLLER_STORE ?? 'memory' },
    etcd: { type: 'string', default: process.env.ETCD_ENDPOINTS ?? 'http://127.0.0.1:2379' },
    prefix: { type: 'string', default: process.env.CONTROLLER_ETCD_PREFIX ?? '/flynn-ts/controller/' },
    'git-host': { type: 'string', default: process.env.GIT_HOST },
  },
});

const key = process.env.CONTROLLER_KEY;
if (!key) {
  console.error('controller: set CONTROLLER_KEY to the cluster key');
  process.exit(2);
}
const logger = createConsoleLogger({ level: 'info' });
let store: Store;
if (values.store === 'etcd') store = new EtcdStore({ hosts: values.etcd.split(','), prefix: values.prefix });
else if (values.store === 'memory') store = new MemoryStore();
else {
  console.error(`controller: --store must be memory or etcd, got ${values.store}`);
  process.exit(2);
}

const controller = await startController({
  key,
  store,
  jobs: new FakeCluster({ store }),
  host: values.host,
  port: Number(values.port),
  logger,
  ...(values['git-host'] ? { gitHost: values['git-host'] } : {}),
});
logger.info('controller ready', { url: controller.url, store: values.store });

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    logger.info('shutting down', { signal });
    void controller
      .close()
      .then(() => store.close())
      .then(() => process.exit(0));
  });
}
