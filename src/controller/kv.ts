/**
 * The tiny transactional key-value contract both store backends are built on. {@link KvStore}
 * keeps all the domain logic; a backend only provides atomic, serializable transactions, prefix
 * listing and a watch of puts.
 */

export interface KvTxn {
  /** Committed value (reads do not see this transaction's own writes). */
  get(key: string): Promise<string | undefined>;
  /** Committed entries under a prefix, sorted by key. */
  list(prefix: string): Promise<Array<[string, string]>>;
  put(key: string, value: string): void;
  delete(key: string): void;
  deletePrefix(prefix: string): void;
}

export interface Kv {
  get(key: string): Promise<string | undefined>;
  list(prefix: string): Promise<Array<[string, string]>>;
  /**
   * Run `fn` and commit its writes atomically if nothing it read with `get` changed meanwhile;
   * otherwise run it again. `fn` may run more than once and must only touch the store through `tx`.
   */
  txn<T>(fn: (tx: KvTxn) => Promise<T>): Promise<T>;
  /** Call `onPut` for every key put under `prefix` from now on. Resolves once the watch is live. */
  watch(prefix: string, onPut: (key: string, value: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}
