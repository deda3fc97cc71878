/**
 * A Dockerfile app's image as a file in shelf, for hosts whose Docker engine did not build it: a
 * `docker save` archive (streamed from the engine to shelf, never whole in memory) that a host
 * agent `docker load`s before it starts a job in the image (src/host/image-archive.ts).
 *
 * The archive is thin: the layers the image shares with a base image every host has (the stack
 * image its `FROM` names) are left out, as the engine's loader reads a layer file only for a
 * layer it does not have. A save of the dockerfile-web fixture is 30 KB instead of 668 MB
 * (docs/buildpacks.md). A host without that base image cannot load it and says which layers it
 * lacks.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type Dockerode from 'dockerode';
import { extract, pack, type Header } from 'tar-stream';
import type { SlugShelf } from './types.js';

export const IMAGE_ARCHIVE_DEFAULTS = Object.freeze({
  /** Images every host has, whose layers an archive leaves out (those present on the building engine). */
  baseImages: ['flynn-ts/stack:latest', 'flynn-ts/runtime:latest'] as readonly string[],
});

export interface SaveImageArchiveOptions {
  docker: Dockerode;
  shelf: Pick<SlugShelf, 'put' | 'urlFor'>;
  /** The image's name (`flynn-ts-app/<app>:<tag>`: the archive carries it, so a host that loads it has it tagged) and pinned id. */
  image: { name: string; id: string };
  /** Blob path in shelf, e.g. `/images/<app>/<id hex>.tar`. */
  path: string;
  /** Default {@link IMAGE_ARCHIVE_DEFAULTS}.baseImages. */
  baseImages?: readonly string[];
  signal?: AbortSignal;
}

export interface SavedImageArchive {
  /** The blob's URL in shelf (signed for each job that needs it, as a slug's). */
  url: string;
  /** Bytes stored. */
  bytes: number;
  /** Layers of the image, and how many of them the archive left out (the base image's). */
  layers: number;
  leftOut: number;
  /** The base image whose layers were left out, if any. */
  base?: string;
  durationMs: number;
}

/** The image's layer ids (diff ids), or none when it is missing. */
async function layersOf(docker: Dockerode, name: string): Promise<string[]> {
  const info = await docker.getImage(name).inspect().catch(() => undefined);
  return info?.RootFS?.Layers ?? [];
}

/** The diff ids the archive may leave out: the longest run of leading layers the image shares with one of the bases. */
async function sharedLayers(docker: Dockerode, layers: string[], bases: readonly string[]): Promise<{ ids: Set<string>; base?: string }> {
  let best: { n: number; base?: string } = { n: 0 };
  for (const base of bases) {
    const of = await layersOf(docker, base);
    let n = 0;
    while (n < of.length && n < layers.length && of[n] === layers[n]) n++;
    // A host with the base has every leading run of its layers (a layer's identity is its chain of parents).
    if (n > best.n) best = { n, base };
  }
  // A layer that also appears above the shared run is needed in the archive (the same file serves both).
  const above = new Set(layers.slice(best.n));
  const ids = new Set(layers.slice(0, best.n).filter((id) => !above.has(id)));
  return best.base === undefined ? { ids } : { ids, base: best.base };
}

/** A pass-through stream that shows each chunk to `see`. */
function tap(see: (chunk: Buffer) => unknown): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      see(chunk);
      cb(null, chunk);
    },
  });
}

/** One entry of the saved tar as it will be written again: small ones in memory, layers from a temp file. */
type Kept = { header: Header; data: Buffer } | { header: Header; file: string };

/**
 * `docker save` the image into shelf at `path`, leaving out the layers its base image has. The
 * engine's tar is read once: each layer file goes to a temp file while it is hashed (its sha256 is
 * its diff id), dropped if the base has it; then the kept entries are written again as the tar
 * that is streamed to shelf.
 */
export async function saveImageArchive(options: SaveImageArchiveOptions): Promise<SavedImageArchive> {
  const started = performance.now();
  const { docker, image } = options;
  const layers = await layersOf(docker, image.id);
  const shared = await sharedLayers(docker, layers, options.baseImages ?? IMAGE_ARCHIVE_DEFAULTS.baseImages);
  const dir = await mkdtemp(join(tmpdir(), 'flynn-image-save-'));
  try {
    const kept: Kept[] = [];
    let leftOut = 0;
    const ex = extract();
    ex.on('entry', (header, stream, next) => {
      const done = (err?: unknown) => (err ? next(err as Error) : next());
      if (header.type === 'file' && /(^|\/)layer\.tar$|^blobs\//.test(header.name)) {
        const file = join(dir, String(kept.length));
        const hash = createHash('sha256');
        pipeline(stream, tap((chunk) => hash.update(chunk)), createWriteStream(file, { mode: 0o600 }))
          .then(async () => {
            if (shared.ids.has(`sha256:${hash.digest('hex')}`)) {
              leftOut++;
              await unlink(file);
            } else kept.push({ header, file });
          })
          .then(() => done(), done);
        return;
      }
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => chunks.push(c as Buffer));
      stream.on('end', () => {
        kept.push({ header, data: Buffer.concat(chunks) });
        done();
      });
    });
    const saved = (await docker.getImage(image.name).get()) as unknown as Readable;
    await pipeline(saved, ex, { ...(options.signal ? { signal: options.signal } : {}) });

    const out = pack();
    let bytes = 0;
    // Counted on the way (a 'data' listener would start the flow before shelf's request reads it).
    const counted = tap((chunk) => (bytes += chunk.length));
    const piped = pipeline(out, counted);
    const write = async () => {
      for (const entry of kept) {
        if ('data' in entry) {
          await new Promise<void>((resolve, reject) => out.entry({ ...entry.header, size: entry.data.length }, entry.data, (err) => (err ? reject(err) : resolve())));
        } else {
          await pipeline(createReadStream(entry.file), out.entry({ ...entry.header }));
        }
      }
      out.finalize();
    };
    const stored = options.shelf.put(options.path, counted, options.signal ? { signal: options.signal } : {});
    // Either side failing ends the other: a failed upload stops the writes (which would wait on it),
    // a failed write the upload. Destroyed without an error: the one to report is the first.
    stored.catch(() => out.destroy());
    const written = write().catch((err: unknown) => {
      out.destroy();
      throw err;
    });
    await Promise.all([written, stored, piped]);
    const result: SavedImageArchive = { url: options.shelf.urlFor(options.path), bytes, layers: layers.length, leftOut, durationMs: Math.round(performance.now() - started) };
    if (shared.base !== undefined && leftOut > 0) result.base = shared.base;
    return result;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
