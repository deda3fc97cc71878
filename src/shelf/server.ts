import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { FlynnError, InvalidInputError, type WireError } from '../common/errors.js';
import type { Closable } from '../common/lifecycle.js';
import { silentLogger, type Logger } from '../common/logger.js';
import type { BlobStore } from './blob-store.js';
import { BlobNotFoundError, BlobTooLargeError, InvalidBlobPathError, InvalidRangeError, ShelfErrorCodes, ShelfUnauthorizedError, UploadAbortedError } from './errors.js';
import { normalizeBlobPath } from './path.js';
import { keyChecker } from '../common/http/key-auth.js';
import { signatureChecker } from './signed-url.js';
import { SHELF_DEFAULTS, type BlobInfo, type ByteRange } from './types.js';

export interface ShelfOptions {
  /** Where the blobs live (`FsBlobStore` in production, `MemoryBlobStore` in tests). Not closed by the server. */
  store: BlobStore;
  /** Address to bind. Default {@link SHELF_DEFAULTS}.host. */
  host?: string;
  /** Port; 0 picks a free one. Default 0. */
  port?: number;
  /** Largest upload accepted, in bytes; larger ones get 413 and store nothing. Default 1 GiB. */
  maxBytes?: number;
  /**
   * When set, every request needs `Authorization: Bearer <key>` (or Basic with the key as
   * password); a missing or wrong key gets 401 and reveals nothing (not even whether the blob
   * exists). A `GET`/`HEAD` of one blob may instead carry a signature made with the key
   * (`shelfUrlSigner`, signed-url.ts), which is how host agents fetch slugs without the key.
   * Default: none, everything open (a shelf on a private loopback for a library user only; a
   * cluster always sets it).
   */
  key?: string;
  /** Logs unexpected (5xx) failures. Default silent. */
  logger?: Logger;
}

export interface Shelf extends Closable {
  /** `http://host:port`, no trailing slash. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
}

/**
 * Start shelf, the blob HTTP service, on `node:http` (bodies are streamed straight to the store,
 * which a JSON framework would only get in the way of):
 *
 * - `PUT /any/path` stores the body (201, JSON {@link BlobInfo}, `ETag`); 413 past `maxBytes`;
 * - `GET` answers with `Content-Length`, `ETag`, `Last-Modified`, `Accept-Ranges: bytes`; a single
 *   `Range: bytes=a-b` (or `a-`, `-n`) gives 206, an unsatisfiable one 416; `If-None-Match` gives 304;
 * - `GET /prefix?list` lists the blobs under a prefix as JSON;
 * - `HEAD` as GET without a body; `DELETE` gives 204, or 404 when there was nothing;
 * - with a `key`, every request needs it (or, for a read, a signed URL): 401 otherwise.
 *
 * Bad paths (`..`, NUL, control characters, bad percent-encoding) are 400; every error is a JSON
 * `{ code, message, detail?, retryable }`.
 */
export async function startShelf(options: ShelfOptions): Promise<Shelf> {
  const host = options.host ?? SHELF_DEFAULTS.host;
  const maxBytes = options.maxBytes ?? SHELF_DEFAULTS.maxBytes;
  const logger = options.logger ?? silentLogger;
  const { store } = options;
  if (options.key !== undefined && (typeof options.key !== 'string' || options.key.length === 0)) {
    throw new InvalidInputError(ShelfErrorCodes.INVALID_OPTIONS, 'key must be a non-empty string when set', { field: 'key' });
  }
  const checkKey = options.key === undefined ? undefined : keyChecker(options.key);
  const checkSignature = options.key === undefined ? undefined : signatureChecker(options.key);
  const authorize = (req: IncomingMessage, path: string, query: URLSearchParams) => {
    if (!checkKey || !checkSignature) return;
    // A signed URL reads the one blob it was made for, and nothing else.
    const read = (req.method === 'GET' || req.method === 'HEAD') && !query.has('list');
    const signature = read ? checkSignature(path, query) : 'none';
    if (signature === 'ok') return;
    if (signature === 'expired') throw new ShelfUnauthorizedError('the signed URL has expired; ask for a new one');
    if (signature === 'wrong') throw new ShelfUnauthorizedError('wrong signature for this blob');
    const check = checkKey(req.headers.authorization);
    if (check !== 'ok') throw new ShelfUnauthorizedError(check === 'missing' ? `${req.method} needs the shelf key (Authorization: Bearer <key>) or a signed URL` : 'wrong shelf key');
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => sendError(res, req, err, logger));
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { path, query } = parseTarget(req.url ?? '/');
    authorize(req, path, query);
    switch (req.method) {
      case 'PUT':
        return put(req, res, path);
      case 'GET':
      case 'HEAD':
        if (query.has('list')) return list(res, req.url ?? '/');
        return get(req, res, path);
      case 'DELETE': {
        if (!(await store.delete(path))) throw new BlobNotFoundError(path);
        res.writeHead(204).end();
        return;
      }
      default:
        res.setHeader('allow', 'GET, HEAD, PUT, DELETE');
        throw new FlynnError(ShelfErrorCodes.METHOD_NOT_ALLOWED, 'invalid', `method ${req.method} is not supported; use GET, HEAD, PUT or DELETE`);
    }
  }

  async function put(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (declared > maxBytes) throw new BlobTooLargeError(maxBytes);
    let aborted = false;
    req.once('aborted', () => (aborted = true));
    const controller = new AbortController();
    // A client that goes away mid-upload: the body ends short or errors; either way nothing is stored.
    req.once('close', () => {
      if (!req.complete) controller.abort(new UploadAbortedError(path));
    });
    let info: BlobInfo;
    try {
      info = await store.put(path, req, { maxBytes, signal: controller.signal });
    } catch (err) {
      // Reading stops at the first error, which tears the request down: a refusal stays a refusal.
      if (err instanceof FlynnError && !(err instanceof UploadAbortedError)) throw err;
      if (aborted || controller.signal.aborted) throw new UploadAbortedError(path, { cause: err });
      throw err;
    }
    if (!req.complete) throw new UploadAbortedError(path);
    const body = JSON.stringify(info);
    res.writeHead(201, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), etag: info.etag, location: info.path });
    res.end(body);
  }

  async function get(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const headInfo = await store.head(path);
    if (!headInfo) throw new BlobNotFoundError(path);
    if (req.headers['if-none-match'] !== undefined && req.headers['if-none-match'].split(',').map((t) => t.trim()).includes(headInfo.etag)) {
      res.writeHead(304, { etag: headInfo.etag }).end();
      return;
    }
    const range = parseRange(req.headers.range, headInfo.size);
    const { info, body } = await store.get(path, range ? { range } : {});
    const headers: Record<string, string | number> = {
      'content-type': 'application/octet-stream',
      etag: info.etag,
      'last-modified': info.modified.toUTCString(),
      'accept-ranges': 'bytes',
    };
    if (range) {
      const end = Math.min(range.end, info.size - 1);
      res.writeHead(206, { ...headers, 'content-range': `bytes ${range.start}-${end}/${info.size}`, 'content-length': end - range.start + 1 });
    } else {
      res.writeHead(200, { ...headers, 'content-length': info.size });
    }
    if (req.method === 'HEAD') {
      body.destroy();
      res.end();
      return;
    }
    await pipeline(body, res).catch(() => res.destroy());
  }

  async function list(res: ServerResponse, target: string): Promise<void> {
    const raw = decodePath(target.split('?')[0] ?? '/');
    const prefix = raw.replace(/\/+$/, '') === '' ? '/' : normalizeBlobPath(raw);
    const blobs = await store.list(prefix);
    const body = JSON.stringify(blobs);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  server.listen(options.port ?? SHELF_DEFAULTS.port, host);
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
      // Uploads still streaming get a short grace, then their sockets are cut (the store drops them).
      setTimeout(() => server.closeAllConnections(), 2000).unref();
    }));
  return { url: `http://${host}:${port}`, host, port, close, [Symbol.asyncDispose]: close };
}

function parseTarget(target: string): { path: string; query: URLSearchParams } {
  const q = target.indexOf('?');
  const rawPath = q < 0 ? target : target.slice(0, q);
  const query = new URLSearchParams(q < 0 ? '' : target.slice(q + 1));
  if (query.has('list')) return { path: '/', query };
  return { path: normalizeBlobPath(decodePath(rawPath)), query };
}

function decodePath(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new InvalidBlobPathError('blob path is not valid percent-encoding');
  }
}

/**
 * A single `bytes=` range resolved against the blob's size. Malformed or multi-range headers are
 * ignored (the whole blob is sent, as RFC 9110 allows); a well-formed range outside the blob throws.
 */
function parseRange(header: string | undefined, size: number): ByteRange | undefined {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) throw new InvalidRangeError(`range ${header} asks for no bytes`, size);
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
    if (m[2] !== '' && Number(m[2]) < start) return undefined;
  }
  if (start >= size) throw new InvalidRangeError(`range ${header} starts past the end of a ${size}-byte blob`, size);
  return { start, end };
}

function sendError(res: ServerResponse, req: IncomingMessage, err: unknown, logger: Logger): void {
  const flynn = err instanceof FlynnError ? err : undefined;
  let status = flynn?.status ?? 500;
  const wire: WireError = flynn ? flynn.toWire() : { code: 'FLYNN_ERR_INTERNAL', message: 'internal error', retryable: false };
  if (flynn instanceof InvalidRangeError) status = 416;
  if (flynn?.code === ShelfErrorCodes.METHOD_NOT_ALLOWED) status = 405;
  if (flynn instanceof ShelfUnauthorizedError) res.setHeader('www-authenticate', 'Bearer realm="flynn-shelf"');
  if (status >= 500) logger.error('shelf request failed', { method: req.method, url: req.url, err: (err as Error).message });
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(wire);
  const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
  if (flynn instanceof InvalidRangeError) headers['content-range'] = `bytes */${flynn.size}`;
  // An upload refused before its body was read: answer, then close, rather than read the rest.
  if (!req.complete) headers.connection = 'close';
  res.writeHead(status, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
  if (!req.complete) res.once('finish', () => req.destroy());
}
