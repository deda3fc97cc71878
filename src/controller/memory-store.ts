import type { Kv, KvTxn } from './kv.js';
import { bufferedTxn, LocalWatchers, Serial } from './kv-parts.js';
import { KvStore, type KvStoreOptions } from './kv-store.js';

/** An in-process {@link Kv}: a sorted map, transactions run one at a time. */
export class MemoryKv implements Kv {
  private readonly data = new Map<string, string>();
  private readonly watchers = new LocalWatchers();
  private readonly serial = new Serial();

  async get(key: string): Promise<string | undefined> {
    return this.data.get(key);
  }

  async list(prefix: string): Promise<Array<[string, string]>> {
    return [...this.data.entries()].filter(([k]) => k.startsWith(prefix)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  txn<T>(fn: (tx: KvTxn) => Promise<T>): Promise<T> {
    return this.serial.run(async () => {
      // One at a time, so what it read cannot change before the commit: nothing to check again.
      const { tx, ops } = bufferedTxn(async (key) => [await this.get(key), undefined], (prefix) => this.list(prefix));
      const out = await fn(tx);
      for (const op of ops) {
        if (op.kind === 'put') this.data.set(op.key, op.value);
        else if (op.kind === 'delete') this.data.delete(op.key);
        else for (const k of [...this.data.keys()]) if (k.startsWith(op.prefix)) this.data.delete(k);
      }
      this.watchers.committed(ops);
      return out;
    });
  }

  async watch(prefix: string, onPut: (key: string, value: string) => void): Promise<() => Promise<void>> {
    return this.watchers.add(prefix, onPut);
  }

  async close(): Promise<void> {
    this.watchers.clear();
  }
}

/**
 * The embedded default store: everything in this process, gone when it exits. Pass the same
 * {@link MemoryKv} to a new MemoryStore to reopen the data (closing a store keeps its data).
 */
export class MemoryStore extends KvStore {
  constructor(kv: MemoryKv = new MemoryKv(), options: KvStoreOptions = {}) {
    super(kv, 'memory controller store', options);
  }
}
