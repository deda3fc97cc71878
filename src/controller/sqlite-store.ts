import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { ControllerInputError, StoreUnavailableError } from './errors.js';
import type { Kv, KvTxn } from './kv.js';
import { bufferedTxn, LocalWatchers, Serial, type KvOp } from './kv-parts.js';
import { KvStore, type KvStoreOptions } from './kv-store.js';

export interface SqliteStoreOptions extends KvStoreOptions {
  /** The database file; its directory is created. The file is created mode 0600 (it holds app env). */
  path: string;
  /**
   * `FULL` (default): every commit is fsynced before it returns, so an acknowledged change survives
   * a power cut. `NORMAL`: a power cut may lose the last commits (a process crash still loses nothing).
   */
  synchronous?: 'FULL' | 'NORMAL';
  /** Times a transaction whose reads another process changed is run again. Default 20. */
  maxRetries?: number;
}

export const SQLITE_STORE_DEFAULTS = Object.freeze({ synchronous: 'FULL' as const, maxRetries: 20, busyTimeoutMs: 5_000 });

/** The smallest string greater than every string starting with `prefix` (for a key range scan). */
function prefixEnd(prefix: string): string | undefined {
  if (prefix === '') return undefined;
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}

const byKey = ([a]: [string, string], [b]: [string, string]) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * A {@link Kv} in one SQLite file (WAL journal): the controller's durable embedded store. Writers of
 * this process go one at a time; a transaction commits only if every key it read with `get` still
 * has the value it read (checked inside the write transaction), else it runs again, so a second
 * process on the same file stays serializable too. Watches see the puts of this process, after commit.
 */
export class SqliteKv implements Kv {
  private readonly db: Database.Database;
  private readonly maxRetries: number;
  private readonly watchers = new LocalWatchers();
  private readonly serial = new Serial();
  private readonly stmts: {
    get: Database.Statement<[string], { value: string }>;
    all: Database.Statement<[], { key: string; value: string }>;
    range: Database.Statement<[string, string], { key: string; value: string }>;
    from: Database.Statement<[string], { key: string; value: string }>;
    put: Database.Statement<[string, string]>;
    delete: Database.Statement<[string]>;
    deleteRange: Database.Statement<[string, string]>;
    deleteFrom: Database.Statement<[string]>;
  };

  constructor(options: SqliteStoreOptions) {
    const path = options.path;
    this.maxRetries = options.maxRetries ?? SQLITE_STORE_DEFAULTS.maxRetries;
    const synchronous = options.synchronous ?? SQLITE_STORE_DEFAULTS.synchronous;
    if (synchronous !== 'FULL' && synchronous !== 'NORMAL') throw new ControllerInputError('synchronous', `sqlite store: synchronous must be FULL or NORMAL, got ${JSON.stringify(synchronous)}`);
    try {
      mkdirSync(dirname(path), { recursive: true });
      // Created here so that it gets 0600 (SQLite gives the -wal and -shm files the same mode).
      closeSync(openSync(path, 'a', 0o600));
      this.db = new Database(path, { timeout: SQLITE_STORE_DEFAULTS.busyTimeoutMs });
      this.db.pragma('journal_mode = WAL');
      this.db.pragma(`synchronous = ${synchronous}`);
      this.db.exec('CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID');
    } catch (err) {
      // A damaged file is not fixed by waiting: say how to get the state back.
      const damaged = ['SQLITE_CORRUPT', 'SQLITE_NOTADB'].includes(String((err as { code?: unknown }).code));
      const fix = damaged ? ' (damaged): restore it, with its -wal file, from a copy, or restore a `flynn cluster backup` into a new data dir (npm start -- --from-backup FILE)' : '';
      throw new StoreUnavailableError(`sqlite store ${path}: ${(err as Error).message}${fix}`, { cause: err });
    }
    this.stmts = {
      get: this.db.prepare('SELECT value FROM kv WHERE key = ?'),
      all: this.db.prepare('SELECT key, value FROM kv'),
      range: this.db.prepare('SELECT key, value FROM kv WHERE key >= ? AND key < ?'),
      from: this.db.prepare('SELECT key, value FROM kv WHERE key >= ?'),
      put: this.db.prepare('INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
      delete: this.db.prepare('DELETE FROM kv WHERE key = ?'),
      deleteRange: this.db.prepare('DELETE FROM kv WHERE key >= ? AND key < ?'),
      deleteFrom: this.db.prepare('DELETE FROM kv WHERE key >= ?'),
    };
  }

  async get(key: string): Promise<string | undefined> {
    return this.wrap(() => this.read(key));
  }

  async list(prefix: string): Promise<Array<[string, string]>> {
    return this.wrap(() => {
      const end = prefixEnd(prefix);
      const rows = prefix === '' ? this.stmts.all.all() : end === undefined ? this.stmts.from.all(prefix) : this.stmts.range.all(prefix, end);
      // Sorted like the other backends (JS string order), whatever SQLite's collation.
      return rows.map((r): [string, string] => [r.key, r.value]).sort(byKey);
    });
  }

  txn<T>(fn: (tx: KvTxn) => Promise<T>): Promise<T> {
    return this.serial.run(() => this.attempt(fn));
  }

  private async attempt<T>(fn: (tx: KvTxn) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const { tx, reads, ops } = bufferedTxn(async (key) => {
        const value = await this.get(key);
        return [value, value];
      }, (prefix) => this.list(prefix));
      const out = await fn(tx);
      if (ops.length === 0) return out;
      if (this.wrap(() => this.db.transaction(() => this.commit(reads, ops)).immediate())) {
        // After the commit, so a watcher that reads finds what it was told about.
        this.watchers.committed(ops);
        return out;
      }
      if (attempt >= this.maxRetries) throw new StoreUnavailableError(`sqlite transaction kept conflicting after ${attempt + 1} attempts`, { retryable: true });
    }
  }

  /** Inside the write transaction: apply `ops` if nothing `reads` saw changed; false (nothing written) otherwise. */
  private commit(reads: Map<string, string | undefined>, ops: KvOp[]): boolean {
    for (const [key, value] of reads) if (this.read(key) !== value) return false;
    for (const op of ops) {
      if (op.kind === 'put') this.stmts.put.run(op.key, op.value);
      else if (op.kind === 'delete') this.stmts.delete.run(op.key);
      else {
        const end = prefixEnd(op.prefix);
        if (end === undefined) this.stmts.deleteFrom.run(op.prefix);
        else this.stmts.deleteRange.run(op.prefix, end);
      }
    }
    return true;
  }

  async watch(prefix: string, onPut: (key: string, value: string) => void): Promise<() => Promise<void>> {
    return this.watchers.add(prefix, onPut);
  }

  async close(): Promise<void> {
    this.watchers.clear();
    // Transactions already queued finish first.
    await this.serial.idle();
    if (this.db.open) this.db.close();
  }

  private read(key: string): string | undefined {
    return this.stmts.get.get(key)?.value;
  }

  private wrap<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw new StoreUnavailableError(`sqlite store: ${(err as Error).message}`, { cause: err });
    }
  }
}

/**
 * The durable embedded store: everything in one SQLite file, kept across restarts (the one-process
 * cluster keeps it in its data dir). `new SqliteStore({ path })` again on the same file reopens the data.
 */
export class SqliteStore extends KvStore {
  constructor(options: SqliteStoreOptions) {
    super(new SqliteKv(options), 'sqlite controller store', options);
  }
}
