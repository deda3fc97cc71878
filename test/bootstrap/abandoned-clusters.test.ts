/**
 * The reaper of killed temp-dir clusters (abandoned-clusters.ts) in a temp dir of its own: it
 * removes this user's own temp dirs whose lock names a dead process, and nothing else, whatever is
 * planted next to them (on a shared /tmp anyone can make `flynn-ts-cluster-*` entries).
 */
import { spawn } from 'node:child_process';
import { chmod, chown, lstat, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeTempDataDir, reapAbandonedClusters, TEMP_CLUSTER_PREFIX } from '../../src/bootstrap/abandoned-clusters.js';
import { silentLogger } from '../../src/common/logger.js';

const exists = (path: string) => lstat(path).then(() => true, () => false);

/** The pid of a process that has ended. */
async function deadPid(): Promise<number> {
  const child = spawn('true');
  await new Promise((done) => child.on('exit', done));
  return child.pid as number;
}

let tmp: string;
let elsewhere: string;
beforeEach(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'flynn-ts-reap-'));
  elsewhere = await mkdtemp(join(tmpdir(), 'flynn-ts-reap-elsewhere-'));
});
afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
  await rm(elsewhere, { recursive: true, force: true });
});

/** A temp data dir of a cluster that was killed: marked, its lock naming a dead process. */
async function killedClusterDir(): Promise<{ dir: string; lock: string }> {
  const dir = await makeTempDataDir(tmp);
  const lock = `${await deadPid()}\n`;
  await writeFile(join(dir, 'lock'), lock);
  await writeFile(join(dir, 'cluster-id'), '0badc0de\n');
  return { dir, lock };
}

describe('cleaning up after killed temp-dir clusters', () => {
  it('removes the temp dir of a killed cluster, also when its lock is garbage, and not one whose lock names a live process', async () => {
    const killed = await killedClusterDir();
    const garbage = await makeTempDataDir(tmp);
    await writeFile(join(garbage, 'lock'), 'not a pid\n');
    const live = await makeTempDataDir(tmp);
    await writeFile(join(live, 'lock'), `${process.pid}\n`);
    const starting = await makeTempDataDir(tmp);

    expect((await reapAbandonedClusters(silentLogger, tmp)).sort()).toEqual([killed.dir, garbage].sort());
    expect(await exists(killed.dir)).toBe(false);
    expect(await readFile(join(live, 'lock'), 'utf8')).toBe(`${process.pid}\n`);
    expect(await exists(starting)).toBe(true);
  });

  it('never follows a symlink named flynn-ts-cluster-* to the dir it points at', async () => {
    // A planted link to a data dir that looks killed: its lock would be taken, its jobs stopped.
    const target = join(elsewhere, 'data');
    await mkdir(target, { mode: 0o700 });
    const lock = `${await deadPid()}\n`;
    await writeFile(join(target, 'lock'), lock);
    await writeFile(join(target, 'temp-data-dir'), '');
    await writeFile(join(target, 'cluster-id'), '0badc0de\n');
    const link = join(tmp, `${TEMP_CLUSTER_PREFIX}planted`);
    await symlink(target, link);

    expect(await reapAbandonedClusters(silentLogger, tmp)).toEqual([]);
    expect(await readFile(join(target, 'lock'), 'utf8')).toBe(lock);
    expect(await exists(link)).toBe(true);
  });

  it('leaves a kept data dir named flynn-ts-cluster-* alone (it has no temp marker)', async () => {
    const kept = join(tmp, `${TEMP_CLUSTER_PREFIX}kept`);
    await mkdir(kept, { mode: 0o700 });
    await writeFile(join(kept, 'lock'), `${await deadPid()}\n`);
    await writeFile(join(kept, 'controller.sqlite'), 'apps');

    expect(await reapAbandonedClusters(silentLogger, tmp)).toEqual([]);
    expect(await readFile(join(kept, 'controller.sqlite'), 'utf8')).toBe('apps');
  });

  it('leaves a dir open to others alone: what is in it may not be ours', async () => {
    const open = await killedClusterDir();
    await chmod(open.dir, 0o777);

    expect(await reapAbandonedClusters(silentLogger, tmp)).toEqual([]);
    expect(await readFile(join(open.dir, 'lock'), 'utf8')).toBe(open.lock);
  });

  it.runIf(process.getuid?.() === 0)("leaves another user's dir alone, also when run as root", async () => {
    const theirs = await killedClusterDir();
    await chown(theirs.dir, 65534, 65534);

    expect(await reapAbandonedClusters(silentLogger, tmp)).toEqual([]);
    expect(await readFile(join(theirs.dir, 'lock'), 'utf8')).toBe(theirs.lock);
  });
});
