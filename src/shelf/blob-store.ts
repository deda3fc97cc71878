import type { Readable } from 'node:stream';
import type { BlobInfo, GetOptions, PutOptions } from './types.js';

/**
 * Where shelf keeps its blobs. Paths are normalised with `normalizeBlobPath` by every backend.
 * A `put` is atomic: readers see the old content or the complete new one, never part of it, and
 * an upload that fails or is aborted leaves nothing behind.
 */
export interface BlobStore {
  /** Store `body` at `path`, replacing what was there. Resolves once the blob is readable. */
  put(path: string, body: AsyncIterable<Uint8Array> | Readable, options?: PutOptions): Promise<BlobInfo>;
  /** The blob's content (or the range asked for), with its info. Throws `BlobNotFoundError`. */
  get(path: string, options?: GetOptions): Promise<{ info: BlobInfo; body: Readable }>;
  /** The blob's info, or undefined when there is none. */
  head(path: string): Promise<BlobInfo | undefined>;
  /** Remove the blob. Resolves true when it existed. */
  delete(path: string): Promise<boolean>;
  /** Every blob whose path starts with `prefix` (a normalised directory, e.g. `/slugs/app`), sorted by path. */
  list(prefix?: string): Promise<BlobInfo[]>;
  close(): Promise<void>;
}
