/**
 * A cluster on a temp data dir (`npm start --ephemeral`, `createTestCluster`, `startCluster`
 * without `dataDir`) stops its apps and removes its dir when it closes. One whose process died
 * without closing (SIGKILL, the OOM killer, a crash) left both behind: its jobs ran on, with nothing
 * left that would ever adopt or stop them. The next cluster started on the machine (`startCluster`,
 * temp dir or not) cleans up after it.
 */
import { lstat, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import type { Logger } from '../common/logger.js';
import { DOCKER_LABELS } from '../host/docker-labels.js';
import { groupsWorkingIn } from '../host/proc-stat.js';
import { killGroup } from '../host/process-job.js';
import { lockDataDir } from './state-files.js';

/** The name of every temp data dir a cluster makes, in the OS temp dir. */
export const TEMP_CLUSTER_PREFIX = 'flynn-ts-cluster-';

/**
 * The file that marks a temp data dir as made by {@link makeTempDataDir}: only such dirs are ever
 * cleaned up, never a kept data dir that happens to be named `flynn-ts-cluster-*`.
 */
const TEMP_MARKER = 'temp-data-dir';

/** Make a cluster's temp data dir (0700, in `dir`), marked as one the next start may clean up. */
export async function makeTempDataDir(dir: string = tmpdir()): Promise<string> {
  const dataDir = await mkdtemp(join(dir, TEMP_CLUSTER_PREFIX));
  await writeFile(join(dataDir, TEMP_MARKER), 'removed when its cluster closes, or by the next start once its cluster is gone\n', { mode: 0o600 });
  return dataDir;
}

/**
 * Whether `dataDir` is a temp data dir this user's cluster made: a real directory (a symlink,
 * which anyone can plant in a shared /tmp, may point at a kept data dir or anywhere), owned by this
 * user and closed to others (as mkdtemp makes it), holding the marker.
 */
async function isOwnTempDir(dataDir: string): Promise<boolean> {
  const dir = await lstat(dataDir).catch(() => undefined);
  if (!dir?.isDirectory() || (dir.mode & 0o077) !== 0) return false;
  if (process.getuid && dir.uid !== process.getuid()) return false;
  return (await lstat(join(dataDir, TEMP_MARKER)).catch(() => undefined))?.isFile() === true;
}

/**
 * Stop the jobs a cluster on `dataDir` left running and that nothing adopts: its process jobs
 * (each a process group working in its job dir, under `jobs/`) and its Docker containers (those
 * labelled with one of its host ids, `host<N>-<cluster id>`). Containers are looked for only when
 * Docker answers.
 */
export async function stopLeftJobs(dataDir: string): Promise<number> {
  let stopped = 0;
  const hostsDir = join(dataDir, 'jobs');
  for (const host of await readdir(hostsDir).catch(() => [] as string[])) {
    for (const job of await readdir(join(hostsDir, host)).catch(() => [] as string[])) {
      for (const group of await groupsWorkingIn(join(hostsDir, host, job))) {
        killGroup(group, 'SIGKILL');
        stopped++;
      }
    }
  }
  const id = (await readFile(join(dataDir, 'cluster-id'), 'utf8').catch(() => '')).trim();
  if (!/^[0-9a-f]{8}$/.test(id)) return stopped;
  const docker = new Dockerode();
  const containers = await docker.listContainers({ all: true, filters: { label: [DOCKER_LABELS.host] } }).catch(() => []);
  const ofThisCluster = new RegExp(`^host\\d+-${id}$`);
  for (const c of containers) {
    if (!ofThisCluster.test(c.Labels[DOCKER_LABELS.host] ?? '')) continue;
    await docker.getContainer(c.Id).remove({ force: true }).catch(() => {});
    stopped++;
  }
  return stopped;
}

/**
 * Find the temp data dirs of clusters whose process is gone (a lock naming a process that no longer
 * runs, or one of an earlier boot), stop what they left running ({@link stopLeftJobs}) and remove
 * them. Only this user's own temp dirs are looked at (see {@link isOwnTempDir}): never a symlink,
 * another user's dir, or a kept data dir. A dir without a lock is left alone: its cluster may be
 * starting. Each dir is locked while it is cleaned, so two starts never clean the same one.
 * Resolves to the dirs removed; a failure is logged, never thrown (it must not stop a start).
 */
export async function reapAbandonedClusters(logger: Logger, dir: string = tmpdir()): Promise<string[]> {
  const reaped: string[] = [];
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.startsWith(TEMP_CLUSTER_PREFIX));
  for (const name of names) {
    const dataDir = join(dir, name);
    try {
      if (!(await isOwnTempDir(dataDir)) || !(await lstat(join(dataDir, 'lock')).catch(() => undefined))) continue;
      const release = await lockDataDir(dataDir).catch(() => undefined);
      // Held by a running cluster.
      if (!release) continue;
      try {
        const stopped = await stopLeftJobs(dataDir);
        await rm(dataDir, { recursive: true, force: true });
        logger.info('removed the temp data dir of a cluster that was killed', { dataDir, jobsStopped: stopped });
        reaped.push(dataDir);
      } finally {
        // A dir that could not be removed is not left locked by this process.
        await release();
      }
    } catch (err) {
      logger.warn('could not clean up after a killed cluster', { dataDir, err: (err as Error).message });
    }
  }
  return reaped;
}
