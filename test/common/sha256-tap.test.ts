import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { Sha256Tap } from '../../src/common/sha256-tap.js';

describe('Sha256Tap', () => {
  it('passes every chunk through unchanged and digests all of them once the stream ends', async () => {
    const chunks = ['flynn ', 'slug ', 'bytes'].map((s) => Buffer.from(s));
    const tap = new Sha256Tap();
    expect(() => tap.digest()).toThrow(/not ended/);
    const out: Buffer[] = [];
    await pipeline(Readable.from(chunks), tap, new Writable({ write: (c: Buffer, _e, done) => (out.push(c), done()) }));
    expect(Buffer.concat(out).toString()).toBe('flynn slug bytes');
    expect(tap.digest()).toBe(createHash('sha256').update('flynn slug bytes').digest('hex'));
  });
});
