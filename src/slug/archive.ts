import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, lstat, mkdir, readdir, readlink, realpath, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { extract, pack, type Pack } from 'tar-stream';
import { Sha256Tap } from '../common/sha256-tap.js';
import { SlugInputError } from './errors.js';

/**
 * Unpack a tar (gzipped when `gzip`) into `dir`, refusing entries that would land outside it:
 * absolute names, `..` segments, and files written through a symlink that leads out. Symlinks
 * themselves are kept as they are (a slug may hold links such as `node_modules/.bin/*`).
 * Entry types other than files, directories and symlinks (devices, fifos, hard links) are skipped.
 */
export async function unpackTar(source: Readable | AsyncIterable<Uint8Array>, dir: string, options: { gzip?: boolean } = {}): Promise<number> {
  const root = await realpath(dir);
  const ex = extract();
  let count = 0;
  const writeEntry = async (header: { name: string; type?: string | null; mode?: number; linkname?: string | null }, entry: Readable): Promise<void> => {
    const target = safeTarget(root, header.name);
    if (target === undefined || !['file', 'directory', 'symlink'].includes(header.type ?? 'file')) {
      entry.resume();
      return;
    }
    await mkdir(path.dirname(target), { recursive: true });
    const parent = await realpath(path.dirname(target));
    if (parent !== root && !parent.startsWith(root + path.sep)) {
      throw new SlugInputError(`archive entry ${header.name} would be written through a symlink that leads out of the app`, { field: 'source' });
    }
    const mode = (header.mode ?? 0o644) & 0o7777;
    if (header.type === 'directory') {
      await mkdir(target, { recursive: true });
      await chmod(target, mode | 0o700);
      entry.resume();
    } else if (header.type === 'symlink') {
      await rm(target, { force: true, recursive: true });
      await symlink(header.linkname ?? '', target);
      entry.resume();
    } else {
      await rm(target, { force: true, recursive: true });
      await pipeline(entry, createWriteStream(target, { mode: mode | 0o600 }));
      await chmod(target, mode | 0o600);
    }
    count++;
  };
  // The event API with an explicit next() and a hand-fed input: tar-stream's extractor is a streamx
  // stream, which node's pipeline() does not always end correctly.
  let failure: Error | undefined;
  const extracted = new Promise<void>((resolve, reject) => {
    ex.on('entry', (header, entry, next) => {
      // Destroying the extractor destroys the entry too; its error is reported once, through `ex`.
      entry.on('error', () => {});
      writeEntry(header, entry as unknown as Readable).then(
        () => next(),
        (err: Error) => {
          failure ??= err;
          entry.resume();
          ex.destroy(err);
        },
      );
    });
    ex.once('error', (err: Error) => reject(failure ?? err));
    ex.once('close', () => (failure ? reject(failure) : resolve()));
  });
  extracted.catch(() => {});
  const input: AsyncIterable<Uint8Array> = options.gzip ? (source as Readable).pipe(createGunzip()) : source;
  try {
    for await (const chunk of input) {
      if (failure || ex.destroyed) break;
      if (!ex.write(chunk as Buffer)) {
        await Promise.race([new Promise<void>((resolve) => ex.once('drain', () => resolve())), extracted.catch(() => {})]);
      }
    }
  } catch (err) {
    ex.destroy(err as Error);
    throw new SlugInputError(`cannot read the archive: ${(err as Error).message}`, { field: 'source', cause: err });
  }
  if (!failure && !ex.destroyed) (ex as unknown as { end(): void }).end();
  try {
    await extracted;
  } catch (err) {
    if (err instanceof SlugInputError) throw err;
    throw new SlugInputError(`cannot read the archive: ${(err as Error).message}`, { field: 'source', cause: err });
  }
  return count;
}

function safeTarget(root: string, name: string): string | undefined {
  if (name.includes('\0')) throw new SlugInputError(`archive entry name contains a NUL byte`, { field: 'source' });
  if (name.startsWith('/')) throw new SlugInputError(`archive entry ${name} has an absolute path`, { field: 'source' });
  const segments = name.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) throw new SlugInputError(`archive entry ${name} climbs out of the app with ..`, { field: 'source' });
  if (segments.length === 0) return undefined;
  return path.join(root, ...segments);
}

/**
 * Write `dir` as a gzipped tar to `file`: entries named `./<relative path>`, sorted, with their
 * modes and symlinks, owned by uid/gid 0 (the runner unpacks them as whoever it runs as).
 * Resolves with the size of the file in bytes and its sha256 (hashed as it is written).
 */
export async function packDir(dir: string, file: string): Promise<{ bytes: number; sha256: string }> {
  const tar = pack();
  const tap = new Sha256Tap();
  const written = pipeline(tar as unknown as Readable, createGzip(), tap, createWriteStream(file));
  try {
    await walk(tar, dir, '.');
    tar.finalize();
  } catch (err) {
    tar.destroy(err as Error);
    await written.catch(() => {});
    throw err;
  }
  await written;
  return { bytes: (await lstat(file)).size, sha256: tap.digest() };
}

/** Add the tree under `abs` to `tar` as `<rel>/...`: directories, files with their modes, symlinks as they are; sorted. */
export async function walk(tar: Pack, abs: string, rel: string): Promise<void> {
  const names = (await readdir(abs)).sort();
  for (const name of names) {
    const childAbs = path.join(abs, name);
    const childRel = `${rel}/${name}`;
    const st = await lstat(childAbs);
    const common = { name: childRel, mode: st.mode & 0o7777, mtime: st.mtime, uid: 0, gid: 0 };
    if (st.isDirectory()) {
      await addEntry(tar, { ...common, type: 'directory' });
      await walk(tar, childAbs, childRel);
    } else if (st.isSymbolicLink()) {
      await addEntry(tar, { ...common, type: 'symlink', linkname: await readlink(childAbs) });
    } else if (st.isFile()) {
      await pipeline(createReadStream(childAbs), tar.entry({ ...common, type: 'file', size: st.size }) as unknown as NodeJS.WritableStream);
    }
  }
}

function addEntry(tar: Pack, header: Parameters<Pack['entry']>[0]): Promise<void> {
  return new Promise((resolve, reject) => tar.entry(header, (err) => (err ? reject(err) : resolve())));
}

/**
 * Remove what `.slugignore` names from `dir`, before any buildpack runs (as Heroku does). One
 * pattern per line; `#` comments and blank lines ignored; `*` and `?` match within a segment, `**`
 * across segments; a pattern with a `/` is anchored at the top, one without matches at any depth;
 * a trailing `/` matches directories only. Resolves with the removed paths, relative to `dir`.
 */
export async function applySlugignore(dir: string, text: string): Promise<string[]> {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((p) => {
      const dirOnly = p.endsWith('/');
      const body = p.replace(/\/+$/, '');
      const anchored = body.includes('/');
      return { re: globToRegExp(body.replace(/^\/+/, ''), anchored), dirOnly };
    });
  const removed: string[] = [];
  const visit = async (rel: string): Promise<void> => {
    for (const entry of await readdir(path.join(dir, rel), { withFileTypes: true })) {
      const child = rel === '' ? entry.name : `${rel}/${entry.name}`;
      const isDir = entry.isDirectory();
      if (rules.some((r) => r.re.test(child) && (!r.dirOnly || isDir))) {
        await rm(path.join(dir, child), { recursive: true, force: true });
        removed.push(child);
      } else if (isDir) {
        await visit(child);
      }
    }
  };
  if (rules.length > 0) await visit('');
  return removed;
}

function globToRegExp(glob: string, anchored: boolean): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
      if (glob[i + 1] === '/') i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(anchored ? `^${re}$` : `(^|/)${re}$`);
}
