import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream, fstat, type Stats } from 'node:fs';
import { lstat, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { syncDir } from '../common/atomic-file.js';
import { CloseGuard } from '../common/lifecycle.js';
import type { BlobStore } from './blob-store.js';
import { checkRange, limitedChunks } from './body.js';
import { BlobNotFoundError, BlobPathConflictError, InvalidBlobPathError } from './errors.js';
import { normalizeBlobPath } from './path.js';
import type { BlobInfo, GetOptions, PutOptions } from './types.js';

/** Upload temp files carry this prefix; no blob path segment may start with it. */
const TEMP_PREFIX = '.shelf-tmp-';

export interface FsBlobStoreOptions {
  /**
   * Directory holding the blobs, created if missing. A blob `/a/b` is the file `<root>/a/b`.
   * Blobs (slugs, build caches: an app's code) are written mode 0600 in directories created 0700.
   */
  root: string;
}

/**
 * A {@link BlobStore} on a local filesystem. An upload is written to a temp file in the target's
 * own directory and renamed over the target once complete, so readers never see a partial blob and
 * a failed or aborted upload only ever leaves a temp file, which it removes. The temp file is
 * fsynced before the rename and the directory after it, so an acknowledged put survives a crash.
 */
export class FsBlobStore implements BlobStore {
  readonly root: string;
  private readonly guard = new CloseGuard('filesystem blob store');
  private readonly tempFiles = new Set<string>();

  constructor(options: FsBlobStoreOptions) {
    this.root = path.resolve(options.root);
  }

  async put(blobPath: string, body: AsyncIterable<Uint8Array> | Readable, options: PutOptions = {}): Promise<BlobInfo> {
    this.guard.assertOpen();
    const key = this.key(blobPath);
    const file = this.file(key);
    const dir = path.dirname(file);
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') throw new BlobPathConflictError(key, { cause: err });
      throw err;
    }
    if ((await lstat(file).catch(() => undefined))?.isDirectory()) throw new BlobPathConflictError(key);
    const temp = path.join(dir, `${TEMP_PREFIX}${randomUUID()}`);
    this.tempFiles.add(temp);
    // flush: fsynced before it finishes, so before it gets its name.
    const out = createWriteStream(temp, { flags: 'wx', mode: 0o600, flush: true });
    const outClosed = new Promise<void>((resolve) => out.once('close', () => resolve()));
    try {
      await pipeline(limitedChunks(body, options.maxBytes, options.signal), out);
      await rename(temp, file).catch((err: NodeJS.ErrnoException) => {
        throw err.code === 'EISDIR' || err.code === 'ENOTEMPTY' ? new BlobPathConflictError(key, { cause: err }) : err;
      });
      // The new name on disk before the put is acknowledged.
      await syncDir(dir);
    } catch (err) {
      // The stream may still be opening (and so creating) the temp file: let it finish first.
      out.destroy();
      await outClosed;
      await rm(temp, { force: true });
      throw err;
    } finally {
      this.tempFiles.delete(temp);
    }
    return infoOf(key, await stat(file));
  }

  async get(blobPath: string, options: GetOptions = {}): Promise<{ info: BlobInfo; body: Readable }> {
    this.guard.assertOpen();
    const key = this.key(blobPath);
    const file = this.file(key);
    // Opened before stat so a concurrent put (a rename) cannot mix two versions: the fd keeps this one.
    const stream = createReadStream(file, options.range ? { start: options.range.start, end: options.range.end } : {});
    const opened = await new Promise<number>((resolve, reject) => {
      stream.once('open', resolve);
      stream.once('error', reject);
    }).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'EISDIR' || err.code === 'ENOTDIR') throw new BlobNotFoundError(key);
      throw err;
    });
    const info = await new Promise<Stats>((resolve, reject) => fstat(opened, (err, st) => (err ? reject(err) : resolve(st))));
    if (!info.isFile()) {
      stream.destroy();
      throw new BlobNotFoundError(key);
    }
    if (options.range) {
      try {
        checkRange(options.range, info.size);
      } catch (err) {
        stream.destroy();
        throw err;
      }
    }
    return { info: infoOf(key, info), body: stream };
  }

  async head(blobPath: string): Promise<BlobInfo | undefined> {
    this.guard.assertOpen();
    const key = this.key(blobPath);
    const info = await stat(this.file(key)).catch(() => undefined);
    return info?.isFile() ? infoOf(key, info) : undefined;
  }

  async delete(blobPath: string): Promise<boolean> {
    this.guard.assertOpen();
    const key = this.key(blobPath);
    const file = this.file(key);
    const info = await lstat(file).catch(() => undefined);
    if (!info?.isFile()) return false;
    // Empty parent directories are left in place: removing them could race a put into the same directory.
    await rm(file, { force: true });
    return true;
  }

  async list(prefix = '/'): Promise<BlobInfo[]> {
    this.guard.assertOpen();
    const start = prefix === '/' || prefix === '' ? '/' : this.key(prefix);
    const out: BlobInfo[] = [];
    const walk = async (key: string): Promise<void> => {
      const entries = await readdir(this.file(key), { withFileTypes: true }).catch(() => []);
      for (const entry of entries) {
        if (entry.name.startsWith(TEMP_PREFIX)) continue;
        const child = key === '/' ? `/${entry.name}` : `${key}/${entry.name}`;
        if (entry.isDirectory()) await walk(child);
        else if (entry.isFile()) {
          const info = await stat(this.file(child)).catch(() => undefined);
          if (info) out.push(infoOf(child, info));
        }
      }
    };
    await walk(start);
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  /** Stop accepting calls and remove the temp files of uploads still running. */
  close(): Promise<void> {
    return this.guard.close(async () => {
      await Promise.all([...this.tempFiles].map((f) => rm(f, { force: true })));
    });
  }

  private key(blobPath: string): string {
    const key = normalizeBlobPath(blobPath);
    if (key.split('/').some((s) => s.startsWith(TEMP_PREFIX))) throw new InvalidBlobPathError(`blob path segments may not start with ${TEMP_PREFIX}`);
    return key;
  }

  private file(key: string): string {
    const file = path.join(this.root, key);
    if (file !== this.root && !file.startsWith(this.root + path.sep)) throw new InvalidBlobPathError(`blob path ${key} escapes the store`);
    return file;
  }
}

function infoOf(key: string, st: Stats): BlobInfo {
  // size, mtime and inode: every put renames a new inode into place, so the tag changes with the content.
  const etag = `"${st.size.toString(16)}-${Math.floor(st.mtimeMs * 1000).toString(16)}-${st.ino.toString(16)}"`;
  return { path: key, size: st.size, etag, modified: st.mtime };
}
