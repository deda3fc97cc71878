import { randomUUID } from 'node:crypto';
import { Etcd3 } from 'etcd3';
import { afterAll, describe, expect, it } from 'vitest';
import { EtcdStore } from '../../src/controller/index.js';
import { KEY_ED25519_FP, KEY_ED25519 } from '../../src/controller/testing/store-suite.js';
import { etcdEndpoints, needEtcd } from '../support/services.js';
import { changed, startHarness } from './harness.js';

describe.runIf(await needEtcd('controller on etcd'))('controller on etcd', () => {
  const prefix = `/flynn-ts-test/controller-restart/${randomUUID()}/`;
  afterAll(async () => {
    const client = new Etcd3({ hosts: etcdEndpoints });
    await client.delete().prefix(prefix);
    client.close();
  });

  it('loses nothing when the controller is restarted, and events resume across the restart', async () => {
    let lastId: string;
    let releaseId: string;
    {
      await using h = await startHarness({ store: new EtcdStore({ hosts: etcdEndpoints, prefix }) });
      await h.client.createApp({ name: 'durable', meta: { tier: 'gold' } });
      const artifact = await h.client.createArtifact({ url: 'http://127.0.0.1:9/s.tgz', processes: { web: { cmd: ['web'] } } });
      const release = await h.client.createRelease('durable', { artifactId: artifact.id, env: { A: '1' } });
      releaseId = release.id;
      await h.client.waitForDeployment('durable', (await h.client.deploy('durable', release.id)).id);
      await h.client.scale('durable', { web: 4 });
      await h.client.createRoute('durable', { type: 'http', domain: 'durable.example.com', service: 'durable-web' });
      await h.client.addKey(KEY_ED25519);
      const events = await h.store.listEvents();
      lastId = events[events.length - 1]?.id ?? '0';
    }
    await using h = await startHarness({ store: new EtcdStore({ hosts: etcdEndpoints, prefix }) });
    const app = await h.client.getApp('durable');
    expect(app).toMatchObject({ meta: { tier: 'gold' }, releaseId });
    expect((await h.client.currentRelease('durable')).env).toEqual({ A: '1' });
    expect((await h.client.getFormation('durable', releaseId)).processes).toEqual({ web: 4 });
    expect((await h.client.listRoutes('durable')).map((r) => (r.type === 'http' ? r.domain : r.port))).toEqual(['durable.example.com']);
    expect((await h.client.listKeys()).map((k) => k.fingerprint)).toEqual([KEY_ED25519_FP]);
    expect((await h.client.listDeployments('durable'))[0]?.status).toBe('complete');
    const change = changed(await h.client.setEnv('durable', { B: '2' }));
    expect(change.release.version).toBe(2);
    await h.client.waitForDeployment('durable', change.deployment.id);
    for await (const e of h.client.events({ lastEventId: lastId })) {
      expect(Number(e.id)).toBe(Number(lastId) + 1);
      expect(e).toMatchObject({ object: 'release', op: 'create' });
      break;
    }
  });
});
