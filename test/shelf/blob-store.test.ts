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
