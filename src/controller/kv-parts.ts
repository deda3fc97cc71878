/** Pieces the {@link Kv} backends share: one writer at a time, a buffered transaction, in-process watchers. */
import type { KvTxn } from './kv.js';

/** A write a transaction buffers until its commit. */
export type KvOp = { kind: 'put'; key: string; value: string } | { kind: 'delete'; key: string } | { kind: 'deletePrefix'; prefix: string };

/** Runs tasks one at a time, in call order; a failed task does not stop the next. */
export class Serial {
  private chain: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const run = this.chain.then(task);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Resolves once every task queued so far has settled. */
  async idle(): Promise<void> {
    await this.chain;
  }
}

/**
 * A {@link KvTxn} that buffers its writes in `ops` and keeps, for each key it read, what `read`
 * returned with it the first time (a revision, the value): what the commit checks again.
 */
export function bufferedTxn<M>(read: (key: string) => Promise<[string | undefined, M]>, list: KvTxn['list']): { tx: KvTxn; reads: Map<string, M>; ops: KvOp[] } {
  const reads = new Map<string, M>();
  const ops: KvOp[] = [];
  const tx: KvTxn = {
    get: async (key) => {
      const [value, mark] = await read(key);
      if (!reads.has(key)) reads.set(key, mark);
      return value;
    },
    list,
    put: (key, value) => void ops.push({ kind: 'put', key, value }),
    delete: (key) => void ops.push({ kind: 'delete', key }),
    deletePrefix: (prefix) => void ops.push({ kind: 'deletePrefix', prefix }),
  };
  return { tx, reads, ops };
}

/** The watches of a backend that sees every write itself (memory, one SQLite file per process). */
export class LocalWatchers {
  private readonly watchers = new Set<{ prefix: string; onPut: (key: string, value: string) => void }>();

  add(prefix: string, onPut: (key: string, value: string) => void): () => Promise<void> {
    const w = { prefix, onPut };
    this.watchers.add(w);
    return async () => void this.watchers.delete(w);
  }

  /** Tell the watchers about the puts of a committed transaction, in order. */
  committed(ops: readonly KvOp[]): void {
    for (const op of ops) if (op.kind === 'put') for (const w of this.watchers) if (op.key.startsWith(w.prefix)) w.onPut(op.key, op.value);
  }

  clear(): void {
    this.watchers.clear();
  }
}
