/**
 * Controller API throughput on the memory and etcd stores: app creates, release creates (the
 * numbered transaction), reads, and the event fan-out to an SSE subscriber. Bounded in count.
 * Reference: GET /status (auth + routing, no store) in the same run. Over HTTPS (a self-signed
 * certificate, the client pinned), as the platform serves the controller.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { loadOrCreateSelfSigned } from '../../src/common/tls/self-signed.js';
import { ControllerClient, EtcdStore, MemoryStore, startController, type Store } from '../../src/controller/index.js';
import { FakeCluster } from '../../src/controller/testing/index.js';

const N = 300;
const CONCURRENCY = 8;
const etcdHosts = (process.env.ETCD_ENDPOINTS ?? 'http://127.0.0.1:2379').split(',');

async function timed(label: string, count: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  const start = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < count) await fn(next++);
  }));
  const ms = performance.now() - start;
  const rate = (count / ms) * 1000;
  console.log(`  ${label.padEnd(34)} ${String(count).padStart(5)} ops  ${ms.toFixed(0).padStart(6)} ms  ${rate.toFixed(0).padStart(6)} ops/s`);
  return rate;
}

async function run(name: string, store: Store): Promise<void> {
  console.log(`\n${name} store (concurrency ${CONCURRENCY})`);
  const dir = await mkdtemp(join(tmpdir(), 'flynn-bench-tls-'));
  const tls = await loadOrCreateSelfSigned({ dir });
  const controller = await startController({ key: 'bench', store, jobs: new FakeCluster({ store }), host: '127.0.0.5', tls });
  const client = new ControllerClient({ url: controller.url, key: 'bench', tls: { pin: tls.pin } });
  try {
    await timed('warm-up (GET /status)', N, () => client.status());
    const ref = await timed('GET /status (reference)', N, () => client.status());
    const create = await timed('POST /apps', N, (i) => client.createApp({ name: `bench-${i}` }));
    await client.createApp({ name: 'rel' });
    const rel = await timed('POST /apps/rel/releases (numbered)', N, () => client.createRelease('rel', { env: {} }));
    const versions = (await client.listReleases('rel')).map((r) => r.version);
    if (versions.length !== N || versions[N - 1] !== N) throw new Error(`release numbering broke: ${versions.length} releases, last v${versions[N - 1]}`);
    const get = await timed('GET /apps/:app', N, (i) => client.getApp(`bench-${i % N}`));
    let seen = 0;
    const abort = new AbortController();
    const sub = (async () => {
      for await (const _ of client.events({ signal: abort.signal })) if (++seen >= N) break;
    })().catch(() => undefined);
    await new Promise((r) => setTimeout(r, 200));
    const start = performance.now();
    for (let i = 0; i < N; i++) await store.appendEvent({ object: 'job', op: 'update', appId: null, objectId: String(i), data: {} });
    await sub;
    abort.abort();
    console.log(`  ${'event → SSE subscriber'.padEnd(34)} ${String(N).padStart(5)} evts ${(performance.now() - start).toFixed(0).padStart(6)} ms`);
    console.log(`  ratios vs reference: create ${(create / ref).toFixed(2)}, release ${(rel / ref).toFixed(2)}, get ${(get / ref).toFixed(2)}`);
  } finally {
    await client.close();
    await controller.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await run('memory', new MemoryStore());
const prefix = `/flynn-ts-bench/controller/${randomUUID()}/`;
try {
  await run('etcd', new EtcdStore({ hosts: etcdHosts, prefix }));
} catch (err) {
  console.log(`etcd store: skipped (${(err as Error).message})`);
} finally {
  const c = new Etcd3({ hosts: etcdHosts });
  await c.delete().prefix(prefix).catch(() => undefined);
  c.close();
}
