import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ShelfClient } from '../../src/shelf/client.js';
import { FsBlobStore } from '../../src/shelf/fs-blob-store.js';
import { startShelf, type Shelf } from '../../src/shelf/server.js';
import { shelfUrlSigner } from '../../src/shelf/signed-url.js';

const HOST = '127.0.0.3';

describe('shelf over HTTP (filesystem store)', () => {
  let root: string;
  let shelf: Shelf;
  let client: ShelfClient;

  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'flynn-shelf-http-'));
    shelf = await startShelf({ store: new FsBlobStore({ root }), host: HOST, port: 0, maxBytes: 64 * 1024 });
    client = new ShelfClient({ url: shelf.url });
  });
  afterAll(async () => {
    await client?.close();
    await shelf?.close();
    await rm(root, { recursive: true, force: true });
  });

  /** A raw request, so the bad inputs reach the server exactly as written. */
  function raw(method: string, target: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; headers: Record<string, string>; body: string }> {
    return new Promise((resolve, reject) => {
      const socket = connect(shelf.port, HOST, () => {
        const head = [`${method} ${target} HTTP/1.1`, `host: ${HOST}`, 'connection: close', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
        if (body !== undefined) head.push(`content-length: ${Buffer.byteLength(body)}`);
        socket.write(`${head.join('\r\n')}\r\n\r\n${body ?? ''}`);
      });
      let data = '';
      socket.on('data', (d) => (data += d));
      socket.on('error', reject);
      socket.on('close', () => {
        const [headText = '', ...rest] = data.split('\r\n\r\n');
        const [statusLine = '', ...lines] = headText.split('\r\n');
        const hs: Record<string, string> = {};
        for (const l of lines) hs[l.slice(0, l.indexOf(':')).toLowerCase()] = l.slice(l.indexOf(':') + 1).trim();
        resolve({ status: Number(statusLine.split(' ')[1]), headers: hs, body: rest.join('\r\n\r\n') });
      });
    });
  }

  it('puts, gets, heads and deletes a blob through the typed client', async () => {
    const put = await client.put('/slugs/app/1.tgz', Readable.from([Buffer.from('slug-bytes')]));
    expect(put).toMatchObject({ path: '/slugs/app/1.tgz', size: 10 });
    expect((await client.getBuffer('/slugs/app/1.tgz')).toString()).toBe('slug-bytes');
    const head = await client.head('/slugs/app/1.tgz');
    expect(head).toMatchObject({ size: 10, etag: put.etag });
    expect((await client.list('/slugs')).map((b) => b.path)).toEqual(['/slugs/app/1.tgz']);
    expect(await client.delete('/slugs/app/1.tgz')).toBe(true);
    expect(await client.delete('/slugs/app/1.tgz')).toBe(false);
    expect(await client.head('/slugs/app/1.tgz')).toBeUndefined();
    await expect(client.get('/slugs/app/1.tgz')).rejects.toMatchObject({ code: 'FLYNN_ERR_SHELF_NOT_FOUND', kind: 'not_found' });
  });

  it('answers GET with Content-Length and ETag, and 304 to a matching If-None-Match', async () => {
    const put = await client.put('/e', 'etag-me');
    const res = await request(`${shelf.url}/e`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-length']).toBe('7');
    expect(res.headers.etag).toBe(put.etag);
    await res.body.dump();
    const again = await request(`${shelf.url}/e`, { headers: { 'if-none-match': put.etag } });
    expect(again.statusCode).toBe(304);
    await again.body.dump();
  });

  it('serves ranges with 206 and refuses unsatisfiable ones with 416', async () => {
    await client.put('/range', '0123456789');
    const part = await client.get('/range', { range: { start: 3, end: 5 } });
    expect(part.range).toEqual({ start: 3, end: 5 });
    expect(part.info.size).toBe(10);
    const chunks: Buffer[] = [];
    for await (const c of part.body) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('345');
    const suffix = await raw('GET', '/range', { range: 'bytes=-3' });
    expect(suffix.status).toBe(206);
    expect(suffix.headers['content-range']).toBe('bytes 7-9/10');
    expect(suffix.body).toBe('789');
    const bad = await raw('GET', '/range', { range: 'bytes=50-60' });
    expect(bad.status).toBe(416);
    expect(bad.headers['content-range']).toBe('bytes */10');
    expect(JSON.parse(bad.body)).toMatchObject({ code: 'FLYNN_ERR_SHELF_INVALID_RANGE' });
    // A malformed range is ignored: the whole blob.
    expect((await raw('GET', '/range', { range: 'bytes=x-y' })).status).toBe(200);
  });

  it('normalises paths: //a/./b is /a/b', async () => {
    await client.put('/norm/b', 'n');
    const res = await raw('GET', '//norm/./b');
    expect(res.status).toBe(200);
    expect(res.body).toBe('n');
  });

  it.each([
    ['a .. segment', '/a/../etc/passwd'],
    ['an encoded .. segment', '/a/%2e%2e/%2E%2E/etc/passwd'],
    ['a NUL byte', '/a%00b'],
    ['a control character', '/a%0Ab'],
    ['an encoded backslash', '/a%5C..%5Cb'],
    ['bad percent-encoding', '/a%zz'],
    ['the root alone', '/'],
  ])('refuses a path with %s with a 400 JSON error', async (_what, target) => {
    for (const method of ['PUT', 'GET', 'DELETE']) {
      const res = await raw(method, target, {}, method === 'PUT' ? 'x' : undefined);
      expect(res.status, `${method} ${target}`).toBe(400);
      expect(JSON.parse(res.body)).toMatchObject({ code: 'FLYNN_ERR_SHELF_INVALID_PATH', retryable: false });
    }
    expect(await readdir(root, { recursive: true })).not.toContain('passwd');
  });

  it('refuses an absolute-URL request target outside the store', async () => {
    const res = await raw('GET', 'http://evil.example/../../etc/passwd');
    expect(res.status).toBe(400);
  });

  it('refuses other methods with 405 JSON', async () => {
    const res = await raw('POST', '/x', {}, 'y');
    expect(res.status).toBe(405);
    expect(JSON.parse(res.body)).toMatchObject({ code: 'FLYNN_ERR_SHELF_METHOD_NOT_ALLOWED' });
  });

  it('refuses an oversize upload with 413 and stores nothing, declared or streamed', async () => {
    const declared = await raw('PUT', '/big', {}, 'x'.repeat(70 * 1024));
    expect(declared.status).toBe(413);
    expect(JSON.parse(declared.body)).toMatchObject({ code: 'FLYNN_ERR_SHELF_TOO_LARGE' });
    async function* chunked(): AsyncGenerator<Buffer> {
      for (let i = 0; i < 10; i++) yield Buffer.alloc(16 * 1024, 1);
    }
    await expect(client.put('/big2', Readable.from(chunked()))).rejects.toMatchObject({ code: 'FLYNN_ERR_SHELF_TOO_LARGE', status: 413 });
    expect(await client.head('/big')).toBeUndefined();
    expect(await client.head('/big2')).toBeUndefined();
    expect(await readdir(root, { recursive: true })).not.toContain('big2');
  });

  it('leaves nothing when the client disconnects mid-upload', async () => {
    await new Promise<void>((resolve, reject) => {
      const socket = connect(shelf.port, HOST, () => {
        socket.write(`PUT /half/blob HTTP/1.1\r\nhost: ${HOST}\r\ncontent-length: 1000\r\n\r\n${'z'.repeat(300)}`);
        setTimeout(() => {
          socket.destroy();
          resolve();
        }, 100);
      });
      socket.on('error', reject);
    });
    // The server notices the close and removes its temp file.
    for (let i = 0; i < 50; i++) {
      const left = (await readdir(root, { recursive: true })).map(String).filter((f) => f.startsWith('half'));
      if (left.length === 0 || left.every((f) => f === 'half')) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const left = (await readdir(root, { recursive: true })).map(String).filter((f) => f.startsWith('half/'));
    expect(left).toEqual([]);
    expect(await client.head('/half/blob')).toBeUndefined();
  });

  it('close is idempotent and the port stops answering', async () => {
    const other = await startShelf({ store: new FsBlobStore({ root }), host: HOST });
    await other.close();
    await other.close();
    await expect(new ShelfClient({ url: other.url }).head('/x')).rejects.toMatchObject({ code: 'FLYNN_ERR_HTTP_UNREACHABLE', retryable: true });
  });
});

describe('shelf with a key', () => {
  it('refuses every request without the key, or with a wrong one (401), reads included, and reveals nothing', async () => {
    const store = new FsBlobStore({ root: await mkdtemp(path.join(tmpdir(), 'flynn-shelf-key-')) });
    const shelf = await startShelf({ store, host: HOST, port: 0, key: 'sekrit' });
    const owner = new ShelfClient({ url: shelf.url, key: 'sekrit' });
    const stranger = new ShelfClient({ url: shelf.url });
    const wrong = new ShelfClient({ url: shelf.url, key: 'guess' });
    try {
      await owner.put('/cache/shop.tgz', 'the source of shop');
      await owner.put('/slugs/shop/1.tgz', 'slug bytes');
      await expect(stranger.put('/slugs/a.tgz', 'evil')).rejects.toMatchObject({ code: 'FLYNN_ERR_SHELF_UNAUTHORIZED', message: expect.stringContaining('needs the shelf key') });
      await expect(wrong.put('/slugs/b.tgz', 'evil')).rejects.toMatchObject({ code: 'FLYNN_ERR_SHELF_UNAUTHORIZED', message: 'wrong shelf key' });
      await expect(stranger.delete('/slugs/shop/1.tgz')).rejects.toMatchObject({ code: 'FLYNN_ERR_SHELF_UNAUTHORIZED' });
      await expect(stranger.list('/slugs')).rejects.toMatchObject({ code: 'FLYNN_ERR_SHELF_UNAUTHORIZED' });
      for (const client of [stranger, wrong]) {
        await expect(client.getBuffer('/cache/shop.tgz')).rejects.toMatchObject({ code: 'FLYNN_ERR_SHELF_UNAUTHORIZED' });
        await expect(client.head('/slugs/shop/1.tgz')).rejects.toMatchObject({ kind: 'unauthorized' }); // HEAD: no body, so no code
      }
      // A raw GET of an existing and of a missing blob: the same 401, no content, no hint of existence.
      const answers = [];
      for (const blob of ['/cache/shop.tgz', '/slugs/shop/1.tgz', '/cache/nothing.tgz']) {
        const res = await request(owner.urlFor(blob));
        answers.push({ status: res.statusCode, body: await res.body.text() });
      }
      expect(answers.map((a) => a.status)).toEqual([401, 401, 401]);
      expect(new Set(answers.map((a) => a.body)).size).toBe(1);
      expect(answers[0]?.body).not.toContain('shop');
      expect((await owner.getBuffer('/cache/shop.tgz')).toString()).toBe('the source of shop');
      expect((await owner.list('/slugs')).map((b) => b.path)).toEqual(['/slugs/shop/1.tgz']);
      expect(await owner.delete('/slugs/shop/1.tgz')).toBe(true);
      await expect(startShelf({ store, key: '' })).rejects.toMatchObject({ code: 'FLYNN_ERR_SHELF_INVALID_OPTIONS' });
    } finally {
      await Promise.all([owner.close(), stranger.close(), wrong.close()]);
      await shelf.close();
    }
  });

  it('serves one blob by a signed URL until it expires, and nothing else with it', async () => {
    const store = new FsBlobStore({ root: await mkdtemp(path.join(tmpdir(), 'flynn-shelf-signed-')) });
    const shelf = await startShelf({ store, host: HOST, port: 0, key: 'sekrit' });
    const owner = new ShelfClient({ url: shelf.url, key: 'sekrit' });
    let now = Date.now();
    const sign = shelfUrlSigner({ url: shelf.url, key: 'sekrit', ttlMs: 60_000, now: () => now });
    const get = async (url: string, init: { method?: 'GET' | 'HEAD' | 'PUT' | 'DELETE'; body?: string } = {}) => {
      const res = await request(url, init);
      return { status: res.statusCode, body: await res.body.text() };
    };
    try {
      await owner.put('/slugs/shop/1.tgz', 'slug bytes');
      await owner.put('/slugs/shop/2.tgz', 'other slug');
      const signed = sign(owner.urlFor('/slugs/shop/1.tgz'));
      expect(signed).toMatch(/\?expires=\d+&signature=[\w-]+$/);
      expect(await get(signed)).toEqual({ status: 200, body: 'slug bytes' });
      expect((await get(signed, { method: 'HEAD' })).status).toBe(200);
      // The signature is for one path, for reading only, and made with the key.
      const query = new URL(signed).search;
      expect((await get(owner.urlFor('/slugs/shop/2.tgz') + query)).status).toBe(401);
      expect((await get(signed, { method: 'PUT', body: 'evil' })).status).toBe(401);
      expect((await get(signed, { method: 'DELETE' })).status).toBe(401);
      expect((await get(`${shelf.url}/slugs?list&${query.slice(1)}`)).status).toBe(401);
      const forged = shelfUrlSigner({ url: shelf.url, key: 'guess' })(owner.urlFor('/slugs/shop/1.tgz'));
      expect(await get(forged)).toMatchObject({ status: 401, body: expect.stringContaining('wrong signature') });
      const later = new URL(signed);
      later.searchParams.set('expires', String(Number(later.searchParams.get('expires')) + 3_600_000));
      expect((await get(later.toString())).status).toBe(401);
      // Expired: signed an hour ago for a minute.
      now -= 3_600_000;
      expect(await get(sign(owner.urlFor('/slugs/shop/1.tgz')))).toMatchObject({ status: 401, body: expect.stringContaining('expired') });
      // URLs elsewhere are left as they are.
      expect(sign('http://example.test/slug.tgz')).toBe('http://example.test/slug.tgz');
    } finally {
      await owner.close();
      await shelf.close();
    }
  });
});
