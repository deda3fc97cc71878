/**
 * The one-process cluster's identity, kept in its data dir: its id and its controller key. Each
 * file is created once, atomically, and checked when read; a file that is there but wrong stops
 * the start with one line naming it (a silently new id or key would change the cluster's identity).
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../common/atomic-file.js';
import { BootstrapDataDirInUseError, BootstrapInputError, BootstrapStateFileError } from './errors.js';

interface StateFile {
  name: string;
  what: string;
  valid: RegExp;
  make: () => string;
  mode: number;
  /** What happens when the file is deleted, for the error message. */
  ifDeleted: string;
}

const CLUSTER_ID: StateFile = {
  name: 'cluster-id',
  what: 'cluster id (8 hex digits)',
  valid: /^[0-9a-f]{8}$/,
  make: () => randomBytes(4).toString('hex'),
  mode: 0o644,
  ifDeleted: 'the running containers of the old id are then not adopted',
};

const CONTROLLER_KEY: StateFile = {
  name: 'controller-key',
  what: 'controller key',
  valid: /^[A-Za-z0-9._~+/=-]{16,}$/,
  make: () => randomBytes(24).toString('hex'),
  mode: 0o600,
  ifDeleted: 'a new key is then generated and the CLI needs `flynn server-add` again',
};

const STICKY_KEY: StateFile = {
  name: 'router-sticky-key',
  what: "router's sticky-cookie key",
  valid: /^[0-9a-f]{64}$/,
  make: () => randomBytes(32).toString('hex'),
  mode: 0o600,
  ifDeleted: 'a new key is then generated and sticky sessions start afresh',
};

async function loadOrCreate(dataDir: string, spec: StateFile): Promise<string> {
  const file = join(dataDir, spec.name);
  const bad = () => new BootstrapStateFileError(file, spec.what, `restore it, or delete it to start afresh (${spec.ifDeleted})`);
  let text: string | undefined;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw bad();
  }
  if (text === undefined) {
    // exclusive: of two starts racing on one data dir, both keep the first value written.
    await writeFileAtomic(file, `${spec.make()}\n`, { mode: spec.mode, exclusive: true }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
    text = await readFile(file, 'utf8');
  }
  const value = text.trim();
  if (!spec.valid.test(value)) throw bad();
  // Every value is written with a final newline: a file cut short has lost it, even when what is
  // left still looks like a value (half a controller key is a valid-looking key).
  if (!text.endsWith('\n')) throw new BootstrapStateFileError(file, spec.what, `restore it, or delete it to start afresh (${spec.ifDeleted})`, 'is cut short (no final newline: truncated?)');
  return value;
}

/**
 * This cluster's id, kept in `<dataDir>/cluster-id`. Host ids carry it, and with them the
 * containers' names and labels, so two clusters on one Docker engine never take each other's
 * containers for their own (an agent adopts the containers labelled with its host id, and the
 * scheduler then stops the ones it has no formation for).
 */
export function loadOrCreateClusterId(dataDir: string): Promise<string> {
  return loadOrCreate(dataDir, CLUSTER_ID);
}

/** The cluster key, kept in `<dataDir>/controller-key` (mode 0600), so that the CLI's `server-add` outlives a restart. */
export function loadOrCreateControllerKey(dataDir: string): Promise<string> {
  return loadOrCreate(dataDir, CONTROLLER_KEY);
}

/** The router's sticky-cookie HMAC key, kept in `<dataDir>/router-sticky-key` (mode 0600), so that sticky sessions outlive a restart. */
export function loadOrCreateStickyKey(dataDir: string): Promise<string> {
  return loadOrCreate(dataDir, STICKY_KEY);
}

/**
 * Create the data dir 0700, or make it 0700 when it was there already open to others (made by hand,
 * a systemd StateDirectory without StateDirectoryMode): its files are 0600, but `repos/` holds the
 * apps' code. A symlink is followed (a data dir moved to a bigger disk).
 */
export async function makeDataDirPrivate(dataDir: string): Promise<void> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
    throw err.code === 'EEXIST' || err.code === 'ENOTDIR' ? new BootstrapInputError(`the data dir ${dataDir} is not a directory (it or a parent is a file): pick another`, 'dataDir') : err;
  });
  if (((await stat(dataDir)).mode & 0o077) !== 0) await chmod(dataDir, 0o700);
}

/** The one-process cluster's store in its data dir (a `SqliteStore`). */
export const STORE_FILE = 'controller.sqlite';

/**
 * Refuse a data dir whose cluster lost its store: `cluster-id` says a cluster ran here, but
 * `controller.sqlite` is missing or empty (truncated, deleted). SQLite takes an empty or missing
 * file for a new database: the cluster would start without its apps and stop their running
 * containers as strangers. Call it before the store is opened, which is before the cluster id is
 * made, so a first start cut short never trips it.
 * @throws {BootstrapStateFileError} naming the store file.
 */
export async function checkStoreFile(dataDir: string): Promise<void> {
  const idFile = join(dataDir, CLUSTER_ID.name);
  const file = join(dataDir, STORE_FILE);
  const [id, store] = await Promise.all([stat(idFile).catch(() => undefined), stat(file).catch(() => undefined)]);
  if (id === undefined || (store !== undefined && store.size > 0)) return;
  throw new BootstrapStateFileError(
    file,
    "controller's store",
    `restore it (with its -wal file) from a copy, or start a new data dir with --from-backup FILE; to start this one afresh with no apps, delete ${idFile} too (the running containers of the old cluster are then not adopted)`,
    `is ${store === undefined ? 'missing' : 'empty'} while ${idFile} says a cluster ran here (deleted or truncated?)`,
  );
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** This boot of the machine (Linux; undefined elsewhere): a pid recorded in another boot names nobody now. */
async function bootId(): Promise<string | undefined> {
  return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => '')).trim() || undefined;
}

/**
 * Take `<dataDir>/lock` for this process; resolves to its release. The lock holds the pid and the
 * machine's boot id. A lock left by a process that is gone (SIGKILLed, crashed), or by any process
 * of an earlier boot (after a power cut its pid may belong to another process now, or to this
 * one), is taken over.
 * @throws {BootstrapDataDirInUseError} when a running process of this boot holds it (this one
 *   included: a second cluster on the same data dir would adopt the first one's jobs).
 */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  const file = join(dataDir, 'lock');
  const boot = await bootId();
  for (;;) {
    try {
      await writeFileAtomic(file, `${process.pid}${boot ? ` ${boot}` : ''}\n`, { exclusive: true });
      return () => rm(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const [pidText = '', lockBoot] = (await readFile(file, 'utf8').catch(() => '')).trim().split(' ');
    const pid = Number(pidText);
    const thisBoot = lockBoot === undefined || boot === undefined || lockBoot === boot;
    if (thisBoot && Number.isInteger(pid) && pid > 0 && running(pid)) throw new BootstrapDataDirInUseError(dataDir, pid, file);
    await rm(file, { force: true });
  }
}
