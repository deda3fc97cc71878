import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { describe, expect, it } from 'vitest';
import { createStore, EtcdStore, MemoryKv, MemoryStore, SqliteStore } from '../../src/controller/index.js';
import { describeStore } from '../../src/controller/testing/index.js';
import { etcdEndpoints, needEtcd } from '../support/services.js';

describeStore('memory', async () => {
  const kv = new MemoryKv();
  return { store: new MemoryStore(kv), reopen: async () => new MemoryStore(kv) };
});

describeStore('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flynn-ts-sqlite-store-'));
  const path = join(dir, 'controller.sqlite');
  return { store: new SqliteStore({ path }), reopen: async () => createStore({ backend: 'sqlite', path }), cleanup: () => rm(dir, { recursive: true, force: true }) };
});

describe('sqlite store', () => {
  it('keeps its file private (mode 0600) and refuses an unknown synchronous mode', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flynn-ts-sqlite-store-'));
    try {
      const store = new SqliteStore({ path: join(dir, 'state', 'controller.sqlite') });
      await store.createApp({ name: 'secret-env' });
      expect((await stat(join(dir, 'state', 'controller.sqlite'))).mode & 0o777).toBe(0o600);
      await store.close();
      expect(() => new SqliteStore({ path: join(dir, 'x.sqlite'), synchronous: 'OFF' as 'FULL' })).toThrow(expect.objectContaining({ code: 'FLYNN_ERR_CONTROLLER_INVALID_INPUT' }));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('says how to get the state back when its file is damaged (torn or not a database)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flynn-ts-sqlite-store-'));
    try {
      const path = join(dir, 'controller.sqlite');
      const store = new SqliteStore({ path });
      for (let i = 0; i < 40; i++) await store.createApp({ name: `app-${i}`, meta: { pad: 'x'.repeat(500) } });
      await store.close();
      const whole = await readFile(path);
      for (const bytes of [whole.subarray(0, Math.floor(whole.length / 2)), Buffer.from('not a database at all, just text '.repeat(40))]) {
        await writeFile(path, bytes);
        let err: unknown;
        try {
          const s = new SqliteStore({ path });
          await s.listApps();
          await s.close();
        } catch (e) {
          err = e;
        }
        expect(err).toMatchObject({ code: 'FLYNN_ERR_CONTROLLER_STORE_UNAVAILABLE' });
        expect((err as Error).message).toMatch(new RegExp(`^sqlite store ${path}: .* \\(damaged\\): restore it, with its -wal file, from a copy, or restore a \`flynn cluster backup\` into a new data dir`));
        expect((err as Error).message).not.toContain('\n');
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('stays serializable with two stores (two processes) on one file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flynn-ts-sqlite-store-'));
    const a = new SqliteStore({ path: join(dir, 'c.sqlite') });
    const b = new SqliteStore({ path: join(dir, 'c.sqlite') });
    try {
      const app = await a.createApp({ name: 'shared' });
      const made = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b).createRelease(app.id, { artifactId: null, env: {}, processes: {} })));
      expect(made.map((r) => r.version).sort((x, y) => x - y)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
      const ids = (await b.listEvents()).map((e) => Number(e.id));
      expect(ids).toEqual(Array.from({ length: ids.length }, (_, i) => i + 1));
    } finally {
      await a.close();
      await b.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe.runIf(await needEtcd('controller etcd store'))('etcd store', () => {
  it('numbers releases densely and keeps names unique across two controllers on one etcd', async () => {
    const prefix = `/flynn-ts-test/controller/${randomUUID()}/`;
    const a = new EtcdStore({ hosts: etcdEndpoints, prefix });
    const b = new EtcdStore({ hosts: etcdEndpoints, prefix });
    try {
      const app = await a.createApp({ name: 'shared' });
      const made = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b).createRelease(app.id, { artifactId: null, env: {}, processes: {} })));
      expect(made.map((r) => r.version).sort((x, y) => x - y)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
      const names = await Promise.allSettled([a.createApp({ name: 'dup' }), b.createApp({ name: 'dup' })]);
      expect(names.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const ids = (await b.listEvents()).map((e) => Number(e.id));
      expect(ids).toEqual(Array.from({ length: ids.length }, (_, i) => i + 1));
    } finally {
      await a.close();
      await b.close();
      const client = new Etcd3({ hosts: etcdEndpoints });
      await client.delete().prefix(prefix);
      client.close();
    }
  });

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
