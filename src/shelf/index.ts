/**
 * Shelf, Flynn's blob store: an HTTP file service (PUT / GET with ranges / HEAD / DELETE) over a
 * {@link BlobStore} (filesystem or memory). Slugs and build caches live here.
 *
 * ```ts
 * import { startShelf, FsBlobStore, ShelfClient } from 'flynn-ts/shelf';
 * await using shelf = await startShelf({ store: new FsBlobStore({ root: '/var/lib/shelf' }), host: '127.0.0.1', port: 0, key });
 * const client = new ShelfClient({ url: shelf.url, key });
 * await client.put('/slugs/app/1.tgz', createReadStream('slug.tgz'));
 * ```
 * @module
 */
export type { BlobStore } from './blob-store.js';
export type { BlobInfo, ByteRange, GetOptions, PutOptions } from './types.js';
export { SHELF_DEFAULTS } from './types.js';
export { normalizeBlobPath } from './path.js';
export { FsBlobStore } from './fs-blob-store.js';
export type { FsBlobStoreOptions } from './fs-blob-store.js';
export { MemoryBlobStore } from './memory-blob-store.js';
export { createBlobStore } from './create.js';
export type { BlobStoreConfig } from './create.js';
export { startShelf } from './server.js';
export type { Shelf, ShelfOptions } from './server.js';
export { ShelfClient } from './client.js';
export { shelfUrlSigner, signatureChecker, SIGNED_URL_DEFAULTS } from './signed-url.js';
export type { ShelfUrlSignerOptions, SignatureCheck } from './signed-url.js';
export type { ShelfClientOptions, ShelfBlob } from './client.js';
export {
  ShelfErrorCodes,
  InvalidBlobPathError,
  BlobNotFoundError,
  BlobTooLargeError,
  InvalidRangeError,
  UploadAbortedError,
  BlobPathConflictError,
  ShelfUnauthorizedError,
} from './errors.js';
