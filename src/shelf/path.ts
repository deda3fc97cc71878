import { InvalidBlobPathError } from './errors.js';
import { SHELF_DEFAULTS } from './types.js';

/**
 * The one way a blob path is read, for every backend and the HTTP server: `/a//b/./c` becomes
 * `/a/b/c`. Refused: empty paths and the root, any `..` segment (even one that would stay inside),
 * NUL and other control characters, backslashes, and paths longer than
 * {@link SHELF_DEFAULTS}.maxPathBytes. A missing leading slash is added.
 */
export function normalizeBlobPath(input: string): string {
  if (typeof input !== 'string') throw new InvalidBlobPathError('blob path must be a string');
  if (Buffer.byteLength(input) > SHELF_DEFAULTS.maxPathBytes) throw new InvalidBlobPathError(`blob path is longer than ${SHELF_DEFAULTS.maxPathBytes} bytes`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(input)) throw new InvalidBlobPathError('blob path contains a NUL or control character');
  if (input.includes('\\')) throw new InvalidBlobPathError('blob path contains a backslash');
  const segments: string[] = [];
  for (const segment of input.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') throw new InvalidBlobPathError(`blob path ${JSON.stringify(input)} contains ".."`);
    segments.push(segment);
  }
  if (segments.length === 0) throw new InvalidBlobPathError('blob path names no file');
  return `/${segments.join('/')}`;
}
