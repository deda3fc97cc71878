import { chmod, lstat, mkdir } from 'node:fs/promises';
import { HostErrorCodes, HostInputError } from './errors.js';

/**
 * Make `path` a directory only this process's user can enter: created 0700 (parents included),
 * or, when it exists, checked to be a directory owned by this user (not a symlink, not another
 * user's: a default under the shared temp directory could have been made by someone else to read
 * or swap what lands in it) and tightened to 0700. `field` names the option in the error.
 */
export async function ensurePrivateDir(path: string, field: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: 0o700 });
  const st = await lstat(path);
  const uid = process.getuid?.();
  if (!st.isDirectory() || (uid !== undefined && st.uid !== uid)) {
    throw new HostInputError(`${field} ${path} is not a directory owned by this user (uid ${uid}): choose another ${field}`, field, HostErrorCodes.INVALID_CONFIG);
  }
  if ((st.mode & 0o077) !== 0) await chmod(path, 0o700);
}
