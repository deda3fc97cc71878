/**
 * A pass-through stream that hashes what flows through it: a slug is hashed while it is packed
 * and checked while a host downloads it, without reading the file a second time.
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/** A sha256 digest as artifacts record it: 64 lowercase hex digits. */
export const SHA256_HEX = /^[0-9a-f]{64}$/;

export class Sha256Tap extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private hex: string | undefined;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    this.hex = this.hash.digest('hex');
    done();
  }

  /** The digest of everything that passed, once the stream has ended (throws before). */
  digest(): string {
    if (this.hex === undefined) throw new Error('the stream has not ended: no digest yet');
    return this.hex;
  }
}
