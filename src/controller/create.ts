import { ControllerInputError } from './errors.js';
import { EtcdStore, type EtcdStoreOptions } from './etcd-store.js';
import type { KvStoreOptions } from './kv-store.js';
import { MemoryStore } from './memory-store.js';
import { SqliteStore, type SqliteStoreOptions } from './sqlite-store.js';
import type { Store } from './store.js';

/**
 * Which backend keeps the controller's state: `{ backend: 'sqlite', path }` (durable, one machine),
 * `{ backend: 'etcd', hosts?, prefix? }` (shared by several controllers) or `{ backend: 'memory' }`
 * (gone with the process).
 */
export type StoreConfig = ({ backend: 'sqlite' } & SqliteStoreOptions) | ({ backend: 'etcd' } & EtcdStoreOptions) | ({ backend: 'memory' } & KvStoreOptions);

export function createStore(config: StoreConfig): Store {
  switch (config.backend) {
    case 'sqlite':
      return new SqliteStore(config);
    case 'etcd':
      return new EtcdStore(config);
    case 'memory':
      return new MemoryStore(undefined, config);
    default:
      throw new ControllerInputError('backend', `unknown store backend ${JSON.stringify((config as { backend?: unknown }).backend)}: use "sqlite", "etcd" or "memory"`);
  }
}
