/**
 * `GET /backup`: the cluster as one streamed tar (`flynn cluster backup`), behind the cluster key
 * like every route. It holds `flynn-backup.json` (format, time, where slugs were served), the
 * store's entries (`store.json`: apps, releases, env, formations, routes, keys, deployments) and,
 * under `data/`, what the platform keeps beside the store (git repositories, shelf blobs, its keys
 * and certificates), then `flynn-backup-end.json`, so that a restore can tell a whole backup from
 * one cut short. It holds secrets (env, keys): keep it as private as the data dir.
 */
import { createReadStream } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyInstance } from 'fastify';
import { pack, type Pack } from 'tar-stream';
import type { Logger } from '../common/logger.js';
import { walk } from '../slug/archive.js';
import type { Store } from './store.js';

export const BACKUP_FORMAT = 'flynn-ts-backup';
/** 2: ends with {@link BACKUP_END} (1 had no end marker, so a backup cut short could not be told from a whole one). */
export const BACKUP_VERSION = 2;
/**
 * The last entry of a backup (`{ createdAt }`, the manifest's): a tar cut short at an entry
 * boundary still reads as a valid tar, so without it a restore would quietly miss the keys and
 * certificates written last and make new ones, a new identity.
 */
export const BACKUP_END = 'flynn-backup-end.json';

/** What a backup holds beside the store, from the platform's data dir. */
export interface BackupSources {
  dataDir: string;
  /** Files and directories under `dataDir` to include (missing ones are skipped), e.g. `repos`, `shelf`. */
  paths: string[];
  /** Written into `flynn-backup.json`, e.g. `{ shelfUrl }` (slug URLs a restore rewrites). */
  meta?: Record<string, string>;
}

/** `flynn-backup.json`. */
export interface BackupManifest extends Record<string, unknown> {
  format: typeof BACKUP_FORMAT;
  version: number;
  createdAt: string;
}

function addFile(tar: Pack, name: string, text: string): Promise<void> {
  return new Promise((resolve, reject) => tar.entry({ name, mode: 0o600 }, text, (err) => (err ? reject(err) : resolve())));
}

async function writeBackup(tar: Pack, store: Store, sources: BackupSources | undefined): Promise<void> {
  const manifest: BackupManifest = { format: BACKUP_FORMAT, version: BACKUP_VERSION, createdAt: new Date().toISOString(), ...sources?.meta };
  await addFile(tar, 'flynn-backup.json', JSON.stringify(manifest, null, 2));
  await addFile(tar, 'store.json', JSON.stringify(await store.dumpEntries()));
  for (const path of sources?.paths ?? []) {
    const abs = join(sources?.dataDir ?? '', path);
    const st = await lstat(abs).catch(() => undefined);
    if (!st) continue;
    if (st.isDirectory()) await walk(tar, abs, `data/${path}`);
    else {
      const stream = tar.entry({ name: `data/${path}`, mode: st.mode & 0o7777, size: st.size, mtime: st.mtime });
      await pipeline(createReadStream(abs), stream as unknown as NodeJS.WritableStream);
    }
  }
  await addFile(tar, BACKUP_END, JSON.stringify({ createdAt: manifest.createdAt }));
  tar.finalize();
}

/** Register `GET /backup` on the controller's API. */
export function registerBackup(api: FastifyInstance, options: { store: Store; sources?: BackupSources; logger: Logger }): void {
  api.get('/backup', async (_req, reply) => {
    const tar = pack();
    writeBackup(tar, options.store, options.sources).catch((err: unknown) => {
      options.logger.error('backup failed', { error: (err as Error).message });
      tar.destroy(err as Error);
    });
    const name = `flynn-backup-${new Date().toISOString().replace(/[:.]/g, '-')}.tar`;
    return reply.header('content-type', 'application/x-tar').header('content-disposition', `attachment; filename="${name}"`).send(tar as unknown as Readable);
  });
}
