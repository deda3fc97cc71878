/** The components' state and the backup dump/restore of a {@link KvStore}, over its {@link Kv}. */
import { ControllerConflictError } from './errors.js';
import type { Kv } from './kv.js';
import { SEQ } from './kv-event-log.js';

/** Prefix of the components' state ({@link Store.putState}). */
const STATE = 'state/';

export async function listState(kv: Kv, prefix: string): Promise<Array<[string, string]>> {
  return (await kv.list(STATE + prefix)).map(([k, v]) => [k.slice(STATE.length), v]);
}

export async function putState(kv: Kv, key: string, value: string): Promise<void> {
  await kv.txn(async (tx) => {
    await tx.get(STATE + key); // a writing etcd transaction compares at least one key
    tx.put(STATE + key, value);
  });
}

export async function deleteState(kv: Kv, key: string): Promise<void> {
  await kv.txn(async (tx) => {
    await tx.get(STATE + key);
    tx.delete(STATE + key);
  });
}

export async function dumpEntries(kv: Kv): Promise<Array<[string, string]>> {
  // A restored cluster starts afresh: a crash loop of the old one is no reason to hold its apps back.
  return (await kv.list('')).filter(([k]) => !k.startsWith(STATE));
}

export async function restoreEntries(kv: Kv, entries: Array<[string, string]>): Promise<void> {
  if ((await kv.list('apps/')).length > 0) throw new ControllerConflictError('the store holds apps already: restore a backup into a fresh cluster (a new data dir, or an empty etcd prefix)');
  const apps = entries.filter(([k]) => k.startsWith('apps/'));
  const rest = entries.filter(([k]) => !k.startsWith('apps/'));
  // Batches well under what etcd takes in one transaction (128 operations, 1.5 MiB).
  for (let i = 0; i < rest.length + apps.length; ) {
    const batch: Array<[string, string]> = [];
    let bytes = 0;
    for (; i < rest.length + apps.length && batch.length < 100 && bytes < 512 * 1024; i++) {
      const entry = (i < rest.length ? rest[i] : apps[i - rest.length]) as [string, string];
      batch.push(entry);
      bytes += entry[0].length + entry[1].length;
    }
    await kv.txn(async (tx) => {
      await tx.get(SEQ); // a writing etcd transaction compares at least one key
      for (const [k, v] of batch) tx.put(k, v);
    });
  }
}
