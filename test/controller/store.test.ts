import { randomUUID } from 'node:crypto';
import { Etcd3 } from 'etcd3';
import { describe, expect, it } from 'vitest';
import { EtcdStore, MemoryKv, MemoryStore } from '../../src/controller/index.js';
import { describeStore } from '../../src/controller/testing/index.js';
import { etcdEndpoints, needEtcd } from '../support/services.js';

describeStore('memory', async () => {
  const kv = new MemoryKv();
  return { store: new MemoryStore(kv), reopen: async () => new MemoryStore(kv) };
});

describe.runIf(await needEtcd('controller etcd store'))('etcd store', () => {
  describeStore('etcd', async () => {
    const prefix = `/flynn-ts-test/controller/${randomUUID()}/`;
    return {
      store: new EtcdStore({ hosts: etcdEndpoints, prefix }),
      reopen: async () => new EtcdStore({ hosts: etcdEndpoints, prefix }),
      cleanup: async () => {
        const client = new Etcd3({ hosts: etcdEndpoints });
        await client.delete().prefix(prefix);
        client.close();
      },
    };
  });
});

it('memory store drops events beyond its retention', async () => {
  const store = new MemoryStore(new MemoryKv(), { eventRetention: 3 });
  for (const name of ['a', 'b', 'c', 'd', 'e']) await store.createApp({ name });
  expect((await store.listEvents()).map((e) => e.id)).toEqual(['3', '4', '5']);
  await store.close();
});
