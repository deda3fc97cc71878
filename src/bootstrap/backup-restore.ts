/**
 * Bring a `flynn cluster backup` tar (src/controller/backup.ts) back into a fresh data dir:
 * `npm start --from-backup FILE`, `startCluster({ fromBackup })`, `fromBackup` in a manifest.
 * The files go into the data dir before anything reads it (the same git host key, controller key
 * and certificate, so pinned clients keep working); the store's entries are written once the new
 * shelf runs, with the slug URLs of the old shelf rewritten to the new one. A new cluster id is
 * made: on the old cluster's Docker engine, the restored one must not adopt the old one's containers.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../common/atomic-file.js';
import { BACKUP_END, BACKUP_FORMAT, BACKUP_VERSION, type BackupManifest } from '../controller/backup.js';
import type { Store } from '../controller/store.js';
import { unpackTar } from '../slug/archive.js';
import { BootstrapInputError } from './errors.js';

/** What a backup brings beside its files, for {@link restoreStore}. */
export interface RestoredBackup {
  entries: Array<[string, string]>;
  /** The shelf URL the backed-up cluster served slugs at (its releases' artifact URLs). */
  shelfUrl?: string;
  createdAt: string;
  /** The data dir's {@link RESTORING} mark, removed once the entries are in the store. */
  mark?: string;
}

/**
 * In a data dir while a restore is not finished (files moved in, store entries not yet written), with
 * the backup's path: a start that fails in between (a busy port) leaves a cluster without its apps,
 * which a plain start would take for the whole cluster and `--from-backup` would refuse as used.
 */
export const RESTORING = 'restoring-from-backup';

/** What the backup holds beside the store (for `BackupSources.paths`); `cluster-id` is left out on purpose. */
export const BACKUP_PATHS: readonly string[] = ['repos', 'shelf', 'ssh_host_rsa_key', 'controller-key', 'controller-tls.crt', 'controller-tls.key', 'router-tls', 'router-sticky-key'];

/** The files a restore (or a start that failed after it) puts into a fresh data dir, removed when a restore runs again. */
const RESTORE_LEFTOVERS = [...BACKUP_PATHS, 'controller.sqlite', 'controller.sqlite-wal', 'controller.sqlite-shm', 'cluster-id'];

/** What in a data dir means it is not fresh. */
const IN_USE = ['controller.sqlite', 'repos', 'shelf', 'cluster-id'];

/**
 * Unpack `file` into `dataDir`, which must be fresh (no store, repos, slugs or cluster id), or hold a
 * restore that did not finish (its files are removed first and the restore is done again).
 * @throws {BootstrapInputError} (field `fromBackup`) for a used data dir or a file that is not a backup.
 */
export async function restoreDataDir(file: string, dataDir: string): Promise<RestoredBackup> {
  const present = await readdir(dataDir).catch(() => [] as string[]);
  const mark = join(dataDir, RESTORING);
  // A restore that did not finish is done again from the start (the data dir was fresh when it began).
  if (present.includes(RESTORING)) await Promise.all(RESTORE_LEFTOVERS.map((name) => rm(join(dataDir, name), { recursive: true, force: true })));
  else {
    const used = IN_USE.filter((name) => present.includes(name));
    if (used.length > 0) throw new BootstrapInputError(`cannot restore ${file} into ${dataDir}: it holds a cluster already (${used.join(', ')}); restore into a new data dir`, 'fromBackup');
  }
  const tmp = await mkdtemp(join(dataDir, '.restore-'));
  try {
    await unpackTar(createReadStream(file), tmp).catch((err: unknown) => {
      throw new BootstrapInputError(`cannot read the backup ${file}: ${(err as Error).message}`, 'fromBackup');
    });
    const manifest = ((await readJson(join(tmp, 'flynn-backup.json'))) ?? {}) as Partial<BackupManifest>;
    if (manifest.format !== BACKUP_FORMAT) throw new BootstrapInputError(`${file} is not a flynn-ts backup (no flynn-backup.json of format ${BACKUP_FORMAT}; make one with flynn cluster backup)`, 'fromBackup');
    if (manifest.version !== BACKUP_VERSION && manifest.version !== 1) throw new BootstrapInputError(`${file} is a backup of version ${String(manifest.version)}; this flynn-ts reads versions 1 and ${BACKUP_VERSION}`, 'fromBackup');
    if (manifest.version === BACKUP_VERSION) {
      const end = (await readJson(join(tmp, BACKUP_END))) as { createdAt?: unknown } | undefined;
      if (typeof manifest.createdAt !== 'string' || end?.createdAt !== manifest.createdAt) throw new BootstrapInputError(`${file} is cut short (no ${BACKUP_END} at its end): copy the whole file again, or make a new backup`, 'fromBackup');
    }
    const entries = (await readJson(join(tmp, 'store.json'))) as Array<[string, string]> | undefined;
    if (!Array.isArray(entries)) throw new BootstrapInputError(`${file} has no readable store.json (cut short or edited?): copy the whole file again, or make a new backup`, 'fromBackup');
    await writeFileAtomic(mark, `${resolve(file)}\n`);
    for (const name of await readdir(join(tmp, 'data')).catch(() => [] as string[])) {
      if (BACKUP_PATHS.includes(name)) await rename(join(tmp, 'data', name), join(dataDir, name));
    }
    return { entries, createdAt: String(manifest.createdAt), mark, ...(typeof manifest.shelfUrl === 'string' ? { shelfUrl: manifest.shelfUrl } : {}) };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** The JSON in `file`, or undefined when it is missing or does not parse (a backup cut short or edited). */
function readJson(file: string): Promise<unknown> {
  return readFile(file, 'utf8').then((text) => JSON.parse(text) as unknown).catch(() => undefined);
}

/** Write the backup's entries into the (empty) store, slug URLs moved from the old shelf to `shelfUrl`. */
export async function restoreStore(store: Store, restored: RestoredBackup, shelfUrl: string): Promise<void> {
  const from = restored.shelfUrl;
  const moved = from && from !== shelfUrl ? restored.entries.map(([k, v]): [string, string] => [k, v.split(from).join(shelfUrl)]) : restored.entries;
  await store.restoreEntries(moved);
  if (restored.mark !== undefined) await rm(restored.mark, { force: true });
}

/**
 * Refuse to start on a data dir whose restore did not finish (see {@link RESTORING}).
 * @throws {BootstrapInputError} (field `fromBackup`) naming the backup to restore again.
 */
export async function checkRestoreFinished(dataDir: string): Promise<void> {
  const from = (await readFile(join(dataDir, RESTORING), 'utf8').catch(() => undefined))?.trim();
  if (from === undefined) return;
  throw new BootstrapInputError(`the restore of ${from || 'a backup'} into ${dataDir} did not finish (the start failed before the apps were in the store): start again with --from-backup ${from || 'FILE'}`, 'fromBackup');
}
