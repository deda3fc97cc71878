/**
 * The conformance suite every {@link BlobStore} passes. Run it against your own backend:
 * `describeBlobStore('s3', async () => ({ store: new MyStore(), cleanup: async () => {} }))`.
 */
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BlobStore } from '../blob-store.js';

export interface BlobStoreFixture {
  store: BlobStore;
  cleanup?: () => Promise<void>;
  /** Names of everything the backend keeps, temp files included (for the "nothing left" checks). */
  residue?: () => Promise<string[]>;
}

async function text(body: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}

/** A body that yields `parts` and then fails, as a client that disconnects mid-upload does. */
async function* brokenBody(parts: string[]): AsyncGenerator<Buffer> {
  for (const p of parts) yield Buffer.from(p);
  throw new Error('client went away');
}

export function describeBlobStore(name: string, factory: () => Promise<BlobStoreFixture>): void {
  describe(`BlobStore conformance: ${name}`, () => {
    let fx: BlobStoreFixture;
    beforeEach(async () => {
      fx = await factory();
    });
    afterEach(async () => {
      await fx.store.close();
      await fx.cleanup?.();
    });

    it('stores a streamed body and reads it back with its size and etag', async () => {
      const info = await fx.store.put('/a/b.txt', Readable.from([Buffer.from('hello '), Buffer.from('world')]));
      expect(info).toMatchObject({ path: '/a/b.txt', size: 11 });
      expect(info.etag).toMatch(/^".+"$/);
      const got = await fx.store.get('/a/b.txt');
      expect(got.info.etag).toBe(info.etag);
      expect(await text(got.body)).toBe('hello world');
      expect(await fx.store.head('a//./b.txt')).toMatchObject({ path: '/a/b.txt', size: 11 });
    });

    it('replaces a blob and changes its etag', async () => {
      const first = await fx.store.put('/x', Readable.from([Buffer.from('one')]));
      const second = await fx.store.put('/x', Readable.from([Buffer.from('two!')]));
      expect(second.etag).not.toBe(first.etag);
      expect(await text((await fx.store.get('/x')).body)).toBe('two!');
    });

    it('reads an inclusive byte range and refuses one past the end', async () => {
      await fx.store.put('/r', Readable.from([Buffer.from('0123456789')]));
      expect(await text((await fx.store.get('/r', { range: { start: 2, end: 4 } })).body)).toBe('234');
      expect(await text((await fx.store.get('/r', { range: { start: 8, end: 100 } })).body)).toBe('89');
      await expect(fx.store.get('/r', { range: { start: 10, end: 12 } })).rejects.toMatchObject({ code: 'FLYNN_ERR_SHELF_INVALID_RANGE' });
    });

    it('answers a missing blob with not found, undefined head and false delete', async () => {
      await expect(fx.store.get('/nope')).rejects.toMatchObject({ code: 'FLYNN_ERR_SHELF_NOT_FOUND', kind: 'not_found' });
      expect(await fx.store.head('/nope')).toBeUndefined();
      expect(await fx.store.delete('/nope')).toBe(false);
    });

    it('deletes a blob', async () => {
      await fx.store.put('/d/e', Readable.from([Buffer.from('x')]));
      expect(await fx.store.delete('/d/e')).toBe(true);
      expect(await fx.store.head('/d/e')).toBeUndefined();
      expect(await fx.store.list('/')).toEqual([]);
    });

    it('lists the blobs under a prefix, sorted', async () => {
      for (const p of ['/slugs/b/2', '/slugs/a/1', '/cache/a', '/slugsx']) await fx.store.put(p, Readable.from([Buffer.from(p)]));
      expect((await fx.store.list('/slugs')).map((b) => b.path)).toEqual(['/slugs/a/1', '/slugs/b/2']);
      expect((await fx.store.list()).map((b) => b.path)).toEqual(['/cache/a', '/slugs/a/1', '/slugs/b/2', '/slugsx']);
    });

    it('refuses paths with .., NUL, control characters or no name', async () => {
      for (const bad of ['/a/../b', '..', '/a/\u0000b', '/a\nb', '/', '', 'a\\b']) {
        await expect(fx.store.put(bad, Readable.from([Buffer.from('x')]))).rejects.toMatchObject({ code: 'FLYNN_ERR_SHELF_INVALID_PATH' });
      }
    });

    it('refuses a path that is both a blob and a directory', async () => {
      await fx.store.put('/p/q', Readable.from([Buffer.from('x')]));
      await expect(fx.store.put('/p', Readable.from([Buffer.from('y')]))).rejects.toMatchObject({ code: 'FLYNN_ERR_SHELF_PATH_CONFLICT' });
      await expect(fx.store.put('/p/q/r', Readable.from([Buffer.from('y')]))).rejects.toMatchObject({ code: 'FLYNN_ERR_SHELF_PATH_CONFLICT' });
    });

    it('stores nothing when an upload is larger than maxBytes', async () => {
      await expect(fx.store.put('/big', Readable.from([Buffer.alloc(600), Buffer.alloc(600)]), { maxBytes: 1000 })).rejects.toMatchObject({ code: 'FLYNN_ERR_SHELF_TOO_LARGE' });
      expect(await fx.store.head('/big')).toBeUndefined();
      if (fx.residue) expect(await fx.residue()).toEqual([]);
    });

    it('keeps the previous content when a replacing upload fails midway', async () => {
      await fx.store.put('/keep', Readable.from([Buffer.from('old')]));
      await expect(fx.store.put('/keep', brokenBody(['new', 'er']))).rejects.toThrow('client went away');
      expect(await text((await fx.store.get('/keep')).body)).toBe('old');
      await expect(fx.store.put('/fresh', brokenBody(['part']))).rejects.toThrow();
      expect(await fx.store.head('/fresh')).toBeUndefined();
      if (fx.residue) expect((await fx.residue()).sort()).toEqual(['keep']);
    });

    it('never shows a reader a half-written blob', async () => {
      await fx.store.put('/atomic', Readable.from([Buffer.from('A'.repeat(1000))]));
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let halfTaken!: () => void;
      const half = new Promise<void>((r) => (halfTaken = r));
      async function* slow(): AsyncGenerator<Buffer> {
        yield Buffer.from('B'.repeat(500));
        halfTaken(); // the store asks for more: it has the first half
        await gate;
        yield Buffer.from('B'.repeat(500));
      }
      const writing = fx.store.put('/atomic', slow());
      await half;
      expect(await text((await fx.store.get('/atomic')).body)).toBe('A'.repeat(1000));
      release();
      await writing;
      expect(await text((await fx.store.get('/atomic')).body)).toBe('B'.repeat(1000));
    });

    it('throws a closed error after close', async () => {
      await fx.store.close();
      await expect(fx.store.head('/x')).rejects.toMatchObject({ code: 'FLYNN_ERR_CLOSED' });
    });
  });
}
