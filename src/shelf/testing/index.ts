/**
 * The blob store conformance suite, for users' own {@link BlobStore} backends (runs inside vitest):
 *
 * ```ts
 * import { describeBlobStore } from 'flynn-ts/shelf/testing';
 * describeBlobStore('s3', async () => ({ store: new MyStore(), cleanup: async () => {} }));
 * ```
 * @module
 */
export { describeBlobStore } from './blob-store-suite.js';
export type { BlobStoreFixture } from './blob-store-suite.js';
