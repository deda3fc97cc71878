/**
 * Crash-safe state files. A state file (a host key, the cluster id, a job's record) is either its
 * old content or its new content after a crash or a power cut, never a torn mix or an empty file:
 * the data goes to a temp file in the same directory, is fsynced, renamed over the target (atomic
 * on POSIX file systems), and the directory is fsynced so that the rename itself is on disk.
 */
import { randomBytes } from 'node:crypto';
import { link, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export interface WriteFileAtomicOptions {
  /** File mode of the new file. Default 0o644 (0o600 for secrets). */
  mode?: number;
  /** Only create: fail with `EEXIST` (and leave the existing file as it is) when `file` exists. Default false. */
  exclusive?: boolean;
}

/** Write `data` to `file` atomically and durably (temp in the same dir → fsync → rename → fsync dir). */
export async function writeFileAtomic(file: string, data: string | Uint8Array, options: WriteFileAtomicOptions = {}): Promise<void> {
  const temp = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(temp, 'wx', options.mode ?? 0o644);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    // link() refuses an existing target where rename() would replace it.
    if (options.exclusive) await link(temp, file);
    else await rename(temp, file);
  } finally {
    await rm(temp, { force: true });
  }
  await syncDir(dirname(file));
}

/** fsync a directory: makes the creations, renames and removals of its entries durable. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
