import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { CloseGuard } from '../common/lifecycle.js';
import type { BlobStore } from './blob-store.js';
import { checkRange, limitedChunks } from './body.js';
import { BlobNotFoundError, BlobPathConflictError } from './errors.js';
import { normalizeBlobPath } from './path.js';
import type { BlobInfo, GetOptions, PutOptions } from './types.js';

/** A {@link BlobStore} in this process's memory, for tests and the embedded single-process cluster. */
export class MemoryBlobStore implements BlobStore {
  private readonly blobs = new Map<string, { info: BlobInfo; data: Buffer }>();
  private readonly guard = new CloseGuard('memory blob store');

  async put(path: string, body: AsyncIterable<Uint8Array> | Readable, options: PutOptions = {}): Promise<BlobInfo> {
    this.guard.assertOpen();
    const key = normalizeBlobPath(path);
    this.checkConflict(key);
    const chunks: Buffer[] = [];
    const hash = createHash('sha256');
    for await (const chunk of limitedChunks(body, options.maxBytes, options.signal)) {
      chunks.push(chunk);
      hash.update(chunk);
    }
    // Checked again: another put may have created a conflicting path while this body streamed.
    this.checkConflict(key);
    const data = Buffer.concat(chunks);
    const info: BlobInfo = { path: key, size: data.length, etag: `"${hash.digest('hex').slice(0, 32)}"`, modified: new Date() };
    this.blobs.set(key, { info, data });
    return { ...info };
  }

  async get(path: string, options: GetOptions = {}): Promise<{ info: BlobInfo; body: Readable }> {
    this.guard.assertOpen();
    const key = normalizeBlobPath(path);
    const blob = this.blobs.get(key);
    if (!blob) throw new BlobNotFoundError(key);
    let data = blob.data;
    if (options.range) {
      checkRange(options.range, data.length);
      data = data.subarray(options.range.start, Math.min(options.range.end, data.length - 1) + 1);
    }
    return { info: { ...blob.info }, body: Readable.from([data]) };
  }

  async head(path: string): Promise<BlobInfo | undefined> {
    this.guard.assertOpen();
    const blob = this.blobs.get(normalizeBlobPath(path));
    return blob ? { ...blob.info } : undefined;
  }

  async delete(path: string): Promise<boolean> {
    this.guard.assertOpen();
    return this.blobs.delete(normalizeBlobPath(path));
  }

  async list(prefix = '/'): Promise<BlobInfo[]> {
    this.guard.assertOpen();
    const dir = prefix === '/' || prefix === '' ? '/' : `${normalizeBlobPath(prefix)}/`;
    return [...this.blobs.values()]
      .filter((b) => b.info.path.startsWith(dir))
      .map((b) => ({ ...b.info }))
      .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  close(): Promise<void> {
    return this.guard.close(async () => this.blobs.clear());
  }

  /** Same rule as a filesystem: a path cannot be both a file and a directory. */
  private checkConflict(key: string): void {
    const asDir = `${key}/`;
    for (const other of this.blobs.keys()) {
      if (other.startsWith(asDir) || key.startsWith(`${other}/`)) throw new BlobPathConflictError(key);
    }
  }
}
