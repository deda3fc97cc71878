import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { startCluster } from '../../src/bootstrap/index.js';
import { EtcdStore } from '../../src/controller/index.js';
import { createDiscovery } from '../../src/discovery/create.js';
import { startHostAgent } from '../../src/host/start.js';
import { createRuntime } from '../../src/host/create.js';
import { etcdEndpoints, needEtcd } from '../support/services.js';
import { describeDeploy } from './deploy-scenario.js';

// The multi-machine shape on loopback: the platform (controller, scheduler, router, shelf, git) with
// no local hosts and an etcd store, and a host agent started on its own that joins through etcd.
if (await needEtcd('platform with separate host agents')) {
  describeDeploy(
    'platform on etcd + a separately started host agent',
    async () => {
      const run = randomUUID().slice(0, 8);
      const prefix = `/flynn-ts-test/${run}`;
      const store = new EtcdStore({ hosts: etcdEndpoints, prefix: `${prefix}/controller/` });
      const cluster = await startCluster({ hostAddrs: [], runtime: 'process', store, discovery: { backend: 'etcd', endpoints: etcdEndpoints, prefix }, ports: { controller: 0, router: 0, git: 0, shelf: 0 } });
      const jobsDir = await mkdtemp(join(tmpdir(), 'flynn-ts-sep-host-'));
      const discovery = createDiscovery({ backend: 'etcd', endpoints: etcdEndpoints, prefix });
      const runtime = createRuntime({ backend: 'process', baseDir: jobsDir });
      const agent = await startHostAgent({ id: `sep-${run}`, advertiseAddr: '127.0.0.5', discovery, runtime, stopGraceMs: 1000, artifactsDir: join(jobsDir, 'artifacts'), key: cluster.hostAgentKey });
      const close = cluster.close;
      return Object.assign(cluster, {
        close: async () => {
          await close();
          // Stop its jobs first, as a host daemon's shutdown does.
          await Promise.all(agent.agent.listJobs().map((j) => agent.agent.stopJob(j.id, { graceMs: 500 }).catch(() => {})));
          await agent.close();
          await runtime.close();
          await discovery.close();
          await store.close();
          const etcd = new Etcd3({ hosts: etcdEndpoints });
          await etcd.delete().prefix(`${prefix}/`).catch(() => {});
          etcd.close();
          await rm(jobsDir, { recursive: true, force: true });
        },
      });
    },
    'sephello',
  );
}
