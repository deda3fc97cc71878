import { rm } from 'node:fs/promises';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep } from '../../src/common/lifecycle.js';
import { EtcdDiscovery } from '../../src/discovery/etcd-backend.js';
import { EventReader } from '../../src/discovery/testing/conformance.js';
import { startEtcdServer, type EtcdServer } from '../../src/discovery/testing/etcd-server.js';
import { needEtcd } from '../support/services.js';
import { startCutProxy } from './cut-proxy.js';

describe.runIf(await needEtcd('discovery etcd restart (needs the etcd binary)'))('etcd discovery through etcd failures', () => {
  let etcd: EtcdServer;
  beforeAll(async () => {
    etcd = await startEtcdServer();
  });
  afterAll(async () => {
    await etcd?.close();
  });

  it('keeps registrations and resumes watches across an etcd restart without losing events', async () => {
    const owner = new EtcdDiscovery({ endpoints: [etcd.endpoint], prefix: '/restart' });
    const watcher = new EtcdDiscovery({ endpoints: [etcd.endpoint], prefix: '/restart' });
    try {
      const kept = await owner.register({ service: 'web', addr: '127.0.0.1:7001', ttlMs: 2_000 });
      const dropped = await owner.register({ service: 'web', addr: '127.0.0.1:7002', ttlMs: 2_000 });
      const events = new EventReader(watcher.watch('web'));
      expect(await events.next()).toMatchObject({ type: 'current', instances: [{ id: kept.instance.id }, { id: dropped.instance.id }] });

      await etcd.restart();

      // Changes right after the restart, likely before the watch has reconnected: it must still see them.
      const added = await retry(() => owner.register({ service: 'web', addr: '127.0.0.1:7003', ttlMs: 2_000 }));
      await dropped.unregister();
      expect(await events.until((e) => e.type === 'up', 10_000)).toMatchObject({ instance: { id: added.instance.id } });
      expect(await events.until((e) => e.type === 'down', 5_000)).toMatchObject({ instance: { id: dropped.instance.id } });

      // The registration made before the restart lives on, past several TTLs.
      await sleep(4_500);
      expect((await watcher.instances('web')).map((i) => i.id)).toEqual([kept.instance.id, added.instance.id]);
      expect((await watcher.leader('web'))?.id).toBe(kept.instance.id);
    } finally {
      await owner.close();
      await watcher.close();
    }
  });

  it('comes back under the same id after an etcd outage longer than its TTL, and stays', async () => {
    const owner = new EtcdDiscovery({ endpoints: [etcd.endpoint], prefix: '/outage' });
    try {
      const reg = await owner.register({ service: 'worker', addr: '127.0.0.1:7301', ttlMs: 1_000 });
      await etcd.stop();
      await sleep(3_000); // the client gives the lease up after 2 x TTL without a keep-alive
      await etcd.start();
      const watcher = new EtcdDiscovery({ endpoints: [etcd.endpoint], prefix: '/outage' });
      try {
        await expect.poll(async () => (await watcher.instances('worker').catch(() => [])).map((i) => i.id), { timeout: 8_000 }).toEqual([reg.instance.id]);
        await sleep(3_000); // several TTLs: the lease it rides now is kept alive
        expect((await watcher.instances('worker')).map((i) => i.id)).toEqual([reg.instance.id]);
      } finally {
        await watcher.close();
      }
    } finally {
      await owner.close();
    }
  });

  it('registers again with the same id when its lease is lost, and watchers see it come back', async () => {
    const owner = new EtcdDiscovery({ endpoints: [etcd.endpoint], prefix: '/lease-lost' });
    const watcher = new EtcdDiscovery({ endpoints: [etcd.endpoint], prefix: '/lease-lost' });
    const raw = new Etcd3({ hosts: [etcd.endpoint] });
    try {
      const reg = await owner.register({ service: 'api', addr: '127.0.0.1:7101', ttlMs: 2_000 });
      const events = new EventReader(watcher.watch('api'));
      await events.next();
      // Revoke the lease behind the owner's back, as if it had expired during a partition.
      const [kv] = (await raw.getAll().prefix('/lease-lost/services/api/').exec()).kvs;
      await raw.leaseClient.leaseRevoke({ ID: kv?.lease as string });
      expect(await events.until((e) => e.type === 'down')).toMatchObject({ instance: { id: reg.instance.id } });
      expect(await events.until((e) => e.type === 'up', 8_000)).toMatchObject({ instance: { id: reg.instance.id, addr: '127.0.0.1:7101' } });
      expect((await watcher.instances('api')).map((i) => i.id)).toEqual([reg.instance.id]);
      const index = (await watcher.instances('api'))[0]?.index;
      await expect.poll(() => reg.instance.index).toBe(index);
    } finally {
      raw.close();
      await owner.close();
      await watcher.close();
    }
  });

  it('re-lists and reports the difference when the revision a watch would resume from was compacted', async () => {
    const proxy = await startCutProxy(etcd.endpoint);
    const direct = new EtcdDiscovery({ endpoints: [etcd.endpoint], prefix: '/compact' });
    const watcher = new EtcdDiscovery({ endpoints: [proxy.endpoint], prefix: '/compact' });
    const raw = new Etcd3({ hosts: [etcd.endpoint] });
    try {
      const gone = await direct.register({ service: 'db', addr: '127.0.0.1:7201' });
      const events = new EventReader(watcher.watch('db'));
      expect(await events.next()).toMatchObject({ type: 'current', leader: { id: gone.instance.id } });

      proxy.cut();
      await sleep(300);
      await gone.unregister();
      const fresh = await direct.register({ service: 'db', addr: '127.0.0.1:7202' });
      for (let i = 0; i < 5; i++) await raw.put('/compact/noise').value(String(i)).exec();
      const head = (await raw.get('/compact/noise').exec()).header.revision;
      await raw.kv.compact({ revision: head, physical: true });
      proxy.restore();

      const seen = [await events.next(15_000), await events.next(), await events.next()];
      expect(seen).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ type: 'down', instance: expect.objectContaining({ id: gone.instance.id }) }),
          expect.objectContaining({ type: 'up', instance: expect.objectContaining({ id: fresh.instance.id }) }),
          expect.objectContaining({ type: 'leader', leader: expect.objectContaining({ id: fresh.instance.id }) }),
        ]),
      );
    } finally {
      raw.close();
      await direct.close();
      await watcher.close();
      await proxy.close();
    }
  });

  // Last: it wipes this private etcd.
  it('follows an etcd that was wiped: registrations come back and watchers see them again', async () => {
    const owner = new EtcdDiscovery({ endpoints: [etcd.endpoint], prefix: '/wiped' });
    const watcher = new EtcdDiscovery({ endpoints: [etcd.endpoint], prefix: '/wiped' });
    const raw = new Etcd3({ hosts: [etcd.endpoint] });
    try {
      const reg = await owner.register({ service: 'api', addr: '127.0.0.1:7401', ttlMs: 1_000 });
      for (let i = 0; i < 40; i++) await raw.put('/wiped/noise').value(String(i)).exec(); // revisions a fresh cluster will not reach soon
      const events = new EventReader(watcher.watch('api'));
      expect(await events.next()).toMatchObject({ type: 'current', instances: [{ id: reg.instance.id }] });
      await sleep(500); // a long-lived watch: established well before the wipe

      await etcd.stop();
      await rm(etcd.dataDir, { recursive: true, force: true });
      await etcd.start();

      // The owner's lease is unknown to the new cluster: it registers again under the same id, and
      // the watch, whose last revision is ahead of the new cluster's, lists again.
      const other = await retry(() => owner.register({ service: 'api', addr: '127.0.0.1:7402', ttlMs: 1_000 }));
      const up = await events.until((e) => e.type === 'up' && e.instance.id === other.instance.id, 15_000);
      expect(up).toMatchObject({ instance: { addr: '127.0.0.1:7402' } });
      await expect.poll(async () => (await watcher.instances('api')).map((i) => i.id).sort(), { timeout: 10_000 }).toEqual([reg.instance.id, other.instance.id].sort());
    } finally {
      raw.close();
      await owner.close();
      await watcher.close();
    }
  });
});

async function retry<T>(fn: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(100);
    }
  }
}
