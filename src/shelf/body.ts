import type { Readable } from 'node:stream';
import { BlobTooLargeError, InvalidRangeError } from './errors.js';
import type { ByteRange } from './types.js';

/** Yield the chunks of `body`, throwing {@link BlobTooLargeError} as soon as it passes `maxBytes`. */
export async function* limitedChunks(body: AsyncIterable<Uint8Array> | Readable, maxBytes = Infinity, signal?: AbortSignal): AsyncGenerator<Buffer> {
  let total = 0;
  for await (const chunk of body as AsyncIterable<Uint8Array | string>) {
    signal?.throwIfAborted();
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    total += buf.length;
    if (total > maxBytes) throw new BlobTooLargeError(maxBytes);
    yield buf;
  }
  signal?.throwIfAborted();
}

/** Check that `range` lies within a blob of `size` bytes. */
export function checkRange(range: ByteRange, size: number): void {
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start || start >= size) {
    throw new InvalidRangeError(`range ${start}-${end} is not satisfiable for a blob of ${size} bytes`, size);
  }
}
