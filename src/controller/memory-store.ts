import type { Kv, KvTxn } from './kv.js';
import { KvStore, type KvStoreOptions } from './kv-store.js';

/** An in-process {@link Kv}: a sorted map, transactions run one at a time. */
export class MemoryKv implements Kv {
  private readonly data = new Map<string, string>();
  private readonly watchers = new Set<{ prefix: string; onPut: (key: string, value: string) => void }>();
  private chain: Promise<unknown> = Promise.resolve();

  async get(key: string): Promise<string | undefined> {
    return this.data.get(key);
  }

  async list(prefix: string): Promise<Array<[string, string]>> {
    return [...this.data.entries()].filter(([k]) => k.startsWith(prefix)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  txn<T>(fn: (tx: KvTxn) => Promise<T>): Promise<T> {
    const run = this.chain.then(async () => {
      const ops: Array<() => void> = [];
      const puts: Array<[string, string]> = [];
      const tx: KvTxn = {
        get: (key) => this.get(key),
        list: (prefix) => this.list(prefix),
        put: (key, value) => {
          ops.push(() => this.data.set(key, value));
          puts.push([key, value]);
        },
        delete: (key) => ops.push(() => this.data.delete(key)),
        deletePrefix: (prefix) =>
          ops.push(() => {
            for (const k of [...this.data.keys()]) if (k.startsWith(prefix)) this.data.delete(k);
          }),
      };
      const out = await fn(tx);
      for (const op of ops) op();
      for (const [key, value] of puts) for (const w of this.watchers) if (key.startsWith(w.prefix)) w.onPut(key, value);
      return out;
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  async watch(prefix: string, onPut: (key: string, value: string) => void): Promise<() => Promise<void>> {
    const w = { prefix, onPut };
    this.watchers.add(w);
    return async () => void this.watchers.delete(w);
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
