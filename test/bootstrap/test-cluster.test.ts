import { describe, expect, it } from 'vitest';
import { createTestCluster } from '../../src/bootstrap/index.js';
import { etcdEndpoints, needEtcd } from '../support/services.js';
import { describeDeploy } from './deploy-scenario.js';

describe('createTestCluster', () => {
  it('starts N host agents on 127.0.0.2.. that the scheduler leads, and tears them down', async () => {
    const cluster = await createTestCluster({ hosts: 2 });
    try {
      expect(cluster.hosts.map((h) => h.agent.advertiseAddr)).toEqual(['127.0.0.2', '127.0.0.3']);
      expect(cluster.scheduler.leading).toBe(true);
      expect(cluster.scheduler.view().hosts.filter((h) => h.ready)).toHaveLength(2);
      expect(await cluster.client.listApps()).toEqual([]);
    } finally {
      await cluster.close();
    }
    await cluster.close(); // idempotent
    await expect(fetch(cluster.controllerUrl)).rejects.toThrow();
  });

  it('refuses a host count it cannot place on loopback', async () => {
    await expect(createTestCluster({ hosts: 0 })).rejects.toMatchObject({ code: 'FLYNN_ERR_BOOTSTRAP_INVALID_OPTIONS' });
    await expect(createTestCluster({ hosts: 9 })).rejects.toMatchObject({ code: 'FLYNN_ERR_BOOTSTRAP_INVALID_OPTIONS' });
  });
});

if (await needEtcd('test cluster on etcd')) {
  describeDeploy('3 hosts, etcd discovery, process runtime', () => createTestCluster({ hosts: 3, discovery: 'etcd', etcdEndpoints }), 'hello3', 3);
}
