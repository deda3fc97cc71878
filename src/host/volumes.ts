/**
 * Host volumes: named directories the agent keeps under its data dir (`<volumesDir>/<name>/data`)
 * and mounts into jobs (Docker: a bind mount at the job's `target`). A volume outlives its jobs and
 * the agent itself: it is a directory with a `volume.json` beside its data, so a restarted agent
 * finds every volume again by listing the directory. Only `delete` removes the data.
 */
import { chown, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensurePrivateDir } from './private-dir.js';
import { VolumeExistsError, VolumeInUseError, VolumeNotFoundError } from './errors.js';
import type { Volume } from './types.js';
import { validateVolumeName } from './validate.js';

export const VOLUME_DEFAULTS = Object.freeze({
  /** uid and gid that own a new volume's data: the Docker runtime's job user (`app`, 1000). */
  owner: { uid: 1000, gid: 1000 },
});

export interface VolumeStoreOptions {
  /** Where volumes live, one directory each. Created 0700 when missing. */
  dir: string;
  hostId: string;
  /** Owner of a new volume's data directory (when the agent runs as root). Default {@link VOLUME_DEFAULTS}.owner. */
  owner?: { uid: number; gid: number };
}

interface VolumeFile {
  name: string;
  createdAt: string;
}

/** The volumes of one host, on disk. `inUse(name)` tells which live job holds a volume (delete refuses then). */
export class VolumeStore {
  private ready: Promise<void> | undefined;
  private readonly owner: { uid: number; gid: number };

  constructor(
    private readonly options: VolumeStoreOptions,
    private readonly inUse: (name: string) => string | undefined,
  ) {
    this.owner = options.owner ?? VOLUME_DEFAULTS.owner;
  }

  /** The host path of a volume's data (what a job mounts). */
  dataPath(name: string): string {
    return join(this.options.dir, name, 'data');
  }

  async create(input: { name: unknown }): Promise<Volume> {
    const name = validateVolumeName(input.name);
    await this.prepare();
    const dir = join(this.options.dir, name);
    // The directory appears whole (data dir and volume.json together) by a rename, or not at all.
    const tmp = join(this.options.dir, `.new-${name}-${process.pid}-${Date.now()}`);
    await mkdir(join(tmp, 'data'), { recursive: true, mode: 0o700 });
    const file: VolumeFile = { name, createdAt: new Date().toISOString() };
    await writeFile(join(tmp, 'volume.json'), JSON.stringify(file) + '\n', { mode: 0o600 });
    // The job's unprivileged user owns its data; an agent that is not root keeps it (a process-runtime host).
    if (process.getuid?.() === 0) await chown(join(tmp, 'data'), this.owner.uid, this.owner.gid);
    try {
      await rename(tmp, dir);
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      if ((err as NodeJS.ErrnoException).code === 'ENOTEMPTY' || (err as NodeJS.ErrnoException).code === 'EEXIST') throw new VolumeExistsError(name);
      throw err;
    }
    return this.view(file);
  }

  async get(name: string): Promise<Volume> {
    validateVolumeName(name);
    const text = await readFile(join(this.options.dir, name, 'volume.json'), 'utf8').catch(() => undefined);
    if (text === undefined) throw new VolumeNotFoundError(name, this.options.hostId);
    return this.view(JSON.parse(text) as VolumeFile);
  }

  async list(): Promise<Volume[]> {
    const names = (await readdir(this.options.dir).catch(() => [] as string[])).filter((n) => !n.startsWith('.')).sort();
    const out: Volume[] = [];
    for (const name of names) out.push(...(await this.get(name).then((v) => [v], () => [])));
    return out;
  }

  /** Remove a volume and its data; refused while a live job uses it. */
  async delete(name: string): Promise<void> {
    await this.get(name);
    const job = this.inUse(name);
    if (job !== undefined) throw new VolumeInUseError(name, job);
    const doomed = join(this.options.dir, `.deleted-${name}-${Date.now()}`);
    await rename(join(this.options.dir, name), doomed);
    await rm(doomed, { recursive: true, force: true });
  }

  private prepare(): Promise<void> {
    return (this.ready ??= ensurePrivateDir(this.options.dir, 'volumesDir'));
  }

  private view(file: VolumeFile): Volume {
    return { name: file.name, hostId: this.options.hostId, path: this.dataPath(file.name), createdAt: file.createdAt };
  }
}
