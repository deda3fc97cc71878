import { describe, expect, it } from 'vitest';
import { createBlobStore } from '../../src/shelf/create.js';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FsBlobStore } from '../../src/shelf/fs-blob-store.js';
import { MemoryBlobStore } from '../../src/shelf/memory-blob-store.js';
import { describeBlobStore } from '../../src/shelf/testing/blob-store-suite.js';

describeBlobStore('memory', async () => ({ store: new MemoryBlobStore() }));

describeBlobStore('filesystem', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'flynn-shelf-'));
  return {
    store: new FsBlobStore({ root }),
    cleanup: () => rm(root, { recursive: true, force: true }),
    residue: async () => (await readdir(root, { recursive: true })).map(String),
  };
});

describe('createBlobStore', () => {
  it('builds the backend a config names and refuses an unknown one', async () => {
    const mem = createBlobStore({ backend: 'memory' });
    expect(mem).toBeInstanceOf(MemoryBlobStore);
    await mem.close();
    expect(createBlobStore({ backend: 'fs', root: tmpdir() })).toBeInstanceOf(FsBlobStore);
    expect(() => createBlobStore({ backend: 's3' } as never)).toThrow(expect.objectContaining({ code: 'FLYNN_ERR_SHELF_INVALID_BACKEND' }));
  });
});
