import type { Readable } from 'node:stream';
import { FlynnError } from '../common/errors.js';
import { HttpJsonClient } from '../common/http/json-client.js';
import type { BlobInfo, ByteRange } from './types.js';

export interface ShelfClientOptions {
  /** Base URL of a shelf server, e.g. `http://127.0.0.1:4000`. */
  url: string;
  /** The shelf key, for a shelf started with one (sent as `Authorization: Bearer <key>`). */
  key?: string;
}

/** A blob as read over HTTP: its info and its (possibly partial) body. */
export interface ShelfBlob {
  info: Omit<BlobInfo, 'path'> & { path: string };
  /** Present for a range read: the range served. */
  range?: ByteRange;
  body: Readable;
}

/**
 * Typed client for shelf. Errors come back as the classes the server threw (`BlobNotFoundError`
 * is a `NotFoundError` with code `FLYNN_ERR_SHELF_NOT_FOUND`, ...); an unreachable server is a
 * retryable `UnavailableError`.
 */
export class ShelfClient {
  readonly url: string;
  private readonly http: HttpJsonClient;

  constructor(options: ShelfClientOptions) {
    this.http = new HttpJsonClient({ url: options.url, ...(options.key === undefined ? {} : { key: options.key }) });
    this.url = this.http.url;
  }

  /** The absolute URL of a blob, for handing to something that fetches it itself (a slug runner). */
  urlFor(path: string): string {
    return this.url + encodePath(path);
  }

  /** Store `body` at `path` (streamed; atomic on the server). */
  async put(path: string, body: Readable | Buffer | string, options: { signal?: AbortSignal } = {}): Promise<BlobInfo> {
    const res = await this.http.stream('PUT', encodePath(path), { rawBody: body, signal: options.signal, headers: { 'content-type': 'application/octet-stream' } });
    return reviveInfo((await res.body.json()) as BlobInfo);
  }

  /** The blob (or a range of it). Throws a `NotFoundError` when missing. */
  async get(path: string, options: { range?: ByteRange; signal?: AbortSignal } = {}): Promise<ShelfBlob> {
    const headers: Record<string, string> = {};
    if (options.range) headers.range = `bytes=${options.range.start}-${options.range.end}`;
    const res = await this.http.stream('GET', encodePath(path), { headers, signal: options.signal });
    const blob: ShelfBlob = { info: infoFromHeaders(path, res.headers), body: res.body as unknown as Readable };
    const contentRange = header(res.headers, 'content-range');
    const m = contentRange ? /^bytes (\d+)-(\d+)\/(\d+)$/.exec(contentRange) : null;
    if (res.statusCode === 206 && m) {
      blob.range = { start: Number(m[1]), end: Number(m[2]) };
      blob.info.size = Number(m[3]);
    }
    return blob;
  }

  /** The whole blob in memory. */
  async getBuffer(path: string, options: { range?: ByteRange; signal?: AbortSignal } = {}): Promise<Buffer> {
    const { body } = await this.get(path, options);
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  /** The blob's info, or undefined when there is none. */
  async head(path: string, options: { signal?: AbortSignal } = {}): Promise<BlobInfo | undefined> {
    try {
      const res = await this.http.stream('HEAD', encodePath(path), { signal: options.signal });
      await res.body.dump();
      return infoFromHeaders(path, res.headers);
    } catch (err) {
      if (err instanceof FlynnError && err.kind === 'not_found') return undefined;
      throw err;
    }
  }

  /** Remove the blob. Resolves false when there was none. */
  async delete(path: string, options: { signal?: AbortSignal } = {}): Promise<boolean> {
    try {
      const res = await this.http.stream('DELETE', encodePath(path), { signal: options.signal });
      await res.body.dump();
      return true;
    } catch (err) {
      if (err instanceof FlynnError && err.kind === 'not_found' && err.code !== 'FLYNN_ERR_HTTP_NOT_FOUND') return false;
      throw err;
    }
  }

  /** Blobs under a prefix, sorted by path. */
  async list(prefix = '/', options: { signal?: AbortSignal } = {}): Promise<BlobInfo[]> {
    const res = await this.http.stream('GET', `${encodePath(prefix === '' ? '/' : prefix)}?list`, { signal: options.signal });
    return ((await res.body.json()) as BlobInfo[]).map(reviveInfo);
  }

  async close(): Promise<void> {
    await this.http.close();
  }
}

function encodePath(path: string): string {
  const withSlash = path.startsWith('/') ? path : `/${path}`;
  return withSlash.split('/').map(encodeURIComponent).join('/');
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function infoFromHeaders(path: string, headers: Record<string, string | string[] | undefined>): BlobInfo {
  const modified = header(headers, 'last-modified');
  return {
    path: path.startsWith('/') ? path : `/${path}`,
    size: Number(header(headers, 'content-length') ?? 0),
    etag: header(headers, 'etag') ?? '',
    modified: modified ? new Date(modified) : new Date(0),
  };
}

function reviveInfo(info: BlobInfo): BlobInfo {
  return { ...info, modified: new Date(info.modified) };
}
