import { Etcd3, type Namespace } from 'etcd3';
import { sleep } from '../common/lifecycle.js';
import { etcdClientOptions, etcdErrorLine, type EtcdCredentials } from '../discovery/etcd-credentials.js';
import { ControllerTooLargeError, StoreUnavailableError } from './errors.js';
import type { Kv, KvTxn } from './kv.js';
import { bufferedTxn, Serial } from './kv-parts.js';
import { KvStore, type KvStoreOptions } from './kv-store.js';

export interface EtcdStoreOptions extends KvStoreOptions {
  /** etcd client endpoints. Default `['http://127.0.0.1:2379']`. */
  hosts?: string[];
  /** Every key lives under this prefix, so several clusters (or tests) can share one etcd. Default `/flynn-ts/controller/`. */
  prefix?: string;
  /** Times a conflicting transaction is retried before giving up. Default 20. */
  maxRetries?: number;
  /**
   * Largest write (keys and values of one transaction), in bytes: a bigger one is refused with a
   * 413 before it reaches etcd, whose answer to it (etcd's `--max-request-bytes`, 1.5 MiB by
   * default) the etcd client counts as a failure of the server, opening its circuit breaker for
   * 5 s for every request. Default 1 MiB.
   */
  maxTxnBytes?: number;
  /** TLS and/or user/password for etcd (as discovery takes them). */
  credentials?: EtcdCredentials;
}

export const ETCD_STORE_DEFAULTS = Object.freeze({
  hosts: ['http://127.0.0.1:2379'],
  prefix: '/flynn-ts/controller/',
  maxRetries: 20,
  maxTxnBytes: 1024 * 1024,
});

/** A {@link Kv} on etcd v3: optimistic transactions compared on the mod revision of every key read. */
export class EtcdKv implements Kv {
  private readonly client: Etcd3;
  private readonly ns: Namespace;
  private readonly maxRetries: number;
  private readonly serial = new Serial();
  private readonly maxTxnBytes: number;

  constructor(options: EtcdStoreOptions = {}) {
    this.client = new Etcd3({ ...etcdClientOptions(options.credentials), hosts: options.hosts ?? [...ETCD_STORE_DEFAULTS.hosts] });
    this.ns = this.client.namespace(options.prefix ?? ETCD_STORE_DEFAULTS.prefix);
    this.maxRetries = options.maxRetries ?? ETCD_STORE_DEFAULTS.maxRetries;
    this.maxTxnBytes = options.maxTxnBytes ?? ETCD_STORE_DEFAULTS.maxTxnBytes;
  }

  async get(key: string): Promise<string | undefined> {
    return this.wrap(async () => (await this.ns.get(key).string()) ?? undefined);
  }

  async list(prefix: string): Promise<Array<[string, string]>> {
    return this.wrap(async () => {
      const res = await this.ns.getAll().prefix(prefix).sort('Key', 'Ascend').strings();
      return Object.entries(res).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    });
  }

  /**
   * Writers in one process go one at a time (every store mutation bumps the event sequence, so
   * they would only conflict); other processes are handled by compare-and-retry with jittered backoff.
   */
  txn<T>(fn: (tx: KvTxn) => Promise<T>): Promise<T> {
    return this.serial.run(() => this.attempt(fn));
  }

  private async attempt<T>(fn: (tx: KvTxn) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const { tx, reads, ops } = bufferedTxn(async (key) => {
        const res = await this.wrap(() => this.ns.get(key).exec());
        const kv = res.kvs[0];
        return [kv ? kv.value.toString() : undefined, kv ? String(kv.mod_revision) : '0'];
      }, (prefix) => this.list(prefix));
      const out = await fn(tx);
      if (ops.length === 0) return out;
      const bytes = ops.reduce((n, op) => n + Buffer.byteLength(op.kind === 'deletePrefix' ? op.prefix : op.key) + (op.kind === 'put' ? Buffer.byteLength(op.value) : 0), 0);
      if (bytes > this.maxTxnBytes) throw new ControllerTooLargeError('a store write', bytes, this.maxTxnBytes);
      const [first, ...rest] = [...reads.entries()];
      if (first === undefined) throw new Error('EtcdKv.txn: a writing transaction must read at least one key');
      let builder = this.ns.if(first[0], 'Mod', '==', Number(first[1]));
      for (const [key, rev] of rest) builder = builder.and(key, 'Mod', '==', Number(rev));
      builder = builder.then(
        ...ops.map((op) =>
          op.kind === 'put' ? this.ns.put(op.key).value(op.value) : op.kind === 'delete' ? this.ns.delete().key(op.key) : this.ns.delete().prefix(op.prefix),
        ),
      );
      const res = await this.wrap(() => builder.commit());
      if (res.succeeded) return out;
      if (attempt >= this.maxRetries) throw new StoreUnavailableError(`etcd transaction kept conflicting after ${attempt + 1} attempts`, { retryable: true });
      await sleep(Math.random() * Math.min(100, 5 * 2 ** attempt));
    }
  }

  async watch(prefix: string, onPut: (key: string, value: string) => void): Promise<() => Promise<void>> {
    const watcher = await this.wrap(() => this.ns.watch().prefix(prefix).create());
    watcher.on('put', (kv) => onPut(kv.key.toString(), kv.value.toString()));
    watcher.on('error', () => undefined);
    return () => watcher.cancel();
  }

  async close(): Promise<void> {
    this.client.close();
  }

  private async wrap<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw new StoreUnavailableError(etcdErrorLine(err), { cause: err });
    }
  }
}

/** The distributed store: everything in etcd under `prefix`; a restarted controller finds it all again. */
export class EtcdStore extends KvStore {
  constructor(options: EtcdStoreOptions = {}) {
    super(new EtcdKv(options), 'etcd controller store', options);
  }
}
