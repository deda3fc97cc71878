/** What a store knows about one blob. */
export interface BlobInfo {
  /** Normalised path, always starting with `/`. */
  path: string;
  /** Size in bytes. */
  size: number;
  /** Strong entity tag, quoted (`"<sha256 prefix>"`), changes whenever the content does. */
  etag: string;
  /** When the blob was last written. */
  modified: Date;
}

/** An inclusive byte range, as in HTTP: `{ start: 0, end: 9 }` is the first ten bytes. */
export interface ByteRange {
  start: number;
  end: number;
}

export interface PutOptions {
  /** Refuse the upload (and store nothing) past this many bytes. Default: no limit. */
  maxBytes?: number;
  signal?: AbortSignal;
}

export interface GetOptions {
  /** Only these bytes. Must lie within the blob (`InvalidRangeError` otherwise). */
  range?: ByteRange;
}

export const SHELF_DEFAULTS = Object.freeze({
  /** Largest upload accepted by the HTTP server, in bytes (1 GiB). */
  maxBytes: 1024 * 1024 * 1024,
  /** Longest path accepted, in bytes. */
  maxPathBytes: 1024,
  /** Address the server binds. */
  host: '127.0.0.1',
  /** Port; 0 picks a free one. */
  port: 0,
});
