import { InvalidInputError } from '../common/errors.js';
import type { BlobStore } from './blob-store.js';
import { FsBlobStore, type FsBlobStoreOptions } from './fs-blob-store.js';
import { MemoryBlobStore } from './memory-blob-store.js';

/** Which store keeps the blobs: `{ backend: 'fs', root }` or `{ backend: 'memory' }`. */
export type BlobStoreConfig = ({ backend: 'fs' } & FsBlobStoreOptions) | { backend: 'memory' };

export function createBlobStore(config: BlobStoreConfig): BlobStore {
  switch (config.backend) {
    case 'fs':
      return new FsBlobStore(config);
    case 'memory':
      return new MemoryBlobStore();
    default:
      throw new InvalidInputError('FLYNN_ERR_SHELF_INVALID_BACKEND', `unknown blob store backend ${JSON.stringify((config as { backend?: unknown }).backend)}: use "fs" or "memory"`, { field: 'backend' });
  }
}
