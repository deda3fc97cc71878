/**
 * `npm start --ephemeral` SIGKILLed leaves its temp data dir and its apps' jobs behind (it could not
 * close). The next cluster started on the machine stops those jobs and removes the dir;
 * it leaves alone the dirs of clusters that run (their lock names a live process) and of clusters
 * still starting (no lock yet).
 */
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { makeTempDataDir, TEMP_CLUSTER_PREFIX } from '../../src/bootstrap/abandoned-clusters.js';
import { createTestCluster } from '../../src/bootstrap/index.js';
import { pinOf } from '../../src/common/tls/self-signed.js';
import { ControllerClient } from '../../src/controller/client.js';
import { DOCKER_LABELS } from '../../src/host/docker-labels.js';
import { groupsWorkingIn } from '../../src/host/proc-stat.js';
import { npmStartPorts, startNpmStart, type Running } from '../support/npm-start.js';
import { running as runs } from '../support/processes.js';
import { needDocker } from '../support/services.js';

const WEB = ['node', '-e', `require('http').createServer((q, s) => s.end('left')).listen(Number(process.env.PORT))`];
const exists = (path: string) => stat(path).then(() => true, () => false);

/** `npm start --ephemeral` on `runtime` with one web job up; its data dir. */
async function ephemeralWithAJob(runtime: 'process' | 'docker', host: string, running: Running[]): Promise<string> {
  const { flags } = await npmStartPorts(host);
  const started = await startNpmStart(['--ephemeral', '--runtime', runtime, ...flags]);
  running.push(started);
  const dataDir = /data in (\S+), removed on exit/.exec(started.stdout())?.[1] ?? '';
  expect(dataDir).toContain(TEMP_CLUSTER_PREFIX);
  const url = /controller\s+(https:\/\/\S+)/.exec(started.stdout())?.[1] ?? '';
  const client = new ControllerClient({ url, key: (await readFile(join(dataDir, 'controller-key'), 'utf8')).trim(), tls: { pin: pinOf(await readFile(join(dataDir, 'controller-tls.crt'), 'utf8')) } });
  try {
    await client.createApp({ name: 'left' });
    const release = await client.createRelease('left', { processes: { web: { cmd: WEB } } });
    await client.waitForDeployment('left', (await client.deploy('left', release.id)).id, { timeoutMs: 60_000 });
    await client.scaleAndWait('left', { web: 1 });
  } finally {
    await client.close();
  }
  return dataDir;
}

const docker = await needDocker('ephemeral cluster cleanup on Docker');

/**
 * SIGKILL the last `npm start` of `running` (it cannot stop its jobs; not asserted that they run
 * on: a cluster started by another test file at this moment may already have cleaned up), then
 * start another cluster and run `check` while it is up.
 */
async function killThenStartAnother(running: Running[], check: () => Promise<void>): Promise<void> {
  const [killed] = running.splice(-1);
  killed?.proc.kill('SIGKILL');
  await killed?.exited;
  const next = await createTestCluster({ runtime: 'process' });
  try {
    await check();
  } finally {
    await next.close();
  }
}

describe('a temp-dir cluster that was SIGKILLed is cleaned up by the next cluster started', () => {
  const running: Running[] = [];
  const dirs: string[] = [];
  afterAll(async () => {
    for (const r of running) if (r.proc.exitCode === null) r.proc.kill('SIGKILL');
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  }, 60_000);

  it('stops the process jobs it left and removes its dir, and leaves running and starting clusters alone', async () => {
    const dataDir = await ephemeralWithAJob('process', '127.0.0.56', running);
    dirs.push(dataDir);
    const groups = (await Promise.all((await jobDirs(dataDir)).map((d) => groupsWorkingIn(d)))).flat();
    expect(groups).toHaveLength(1);
    // A cluster that runs (its lock names this live process) and one still starting (no lock yet).
    const live = await makeTempDataDir();
    await writeFile(join(live, 'lock'), `${process.pid}\n`);
    const starting = await makeTempDataDir();
    dirs.push(live, starting);

    await killThenStartAnother(running, async () => {
      expect(await exists(dataDir)).toBe(false);
      // SIGKILLed: gone once the kernel has delivered it (a zombie left for its reaper counts as gone).
      await vi.waitFor(() => expect(groups.filter((g) => runs(g))).toEqual([]), { timeout: 10_000, interval: 50 });
      expect(await exists(join(live, 'lock'))).toBe(true);
      expect(await exists(starting)).toBe(true);
    });
  }, 180_000);

  it.runIf(docker)('removes the containers of a killed ephemeral cluster on Docker', async () => {
    const dataDir = await ephemeralWithAJob('docker', '127.0.0.57', running);
    dirs.push(dataDir);
    const id = (await readFile(join(dataDir, 'cluster-id'), 'utf8')).trim();
    const engine = new Docker();
    const mine = async () => (await engine.listContainers({ all: true, filters: { label: [`${DOCKER_LABELS.host}=host1-${id}`] } })).map((c) => c.Id);
    expect(await mine()).toHaveLength(1);

    await killThenStartAnother(running, async () => {
      expect(await exists(dataDir)).toBe(false);
      expect(await mine()).toEqual([]);
    });
  }, 180_000);
});

/** The job dirs of a process-runtime cluster on `dataDir` (`jobs/<host>/<job>`). */
async function jobDirs(dataDir: string): Promise<string[]> {
  const hosts = await readdir(join(dataDir, 'jobs'));
  return (await Promise.all(hosts.map(async (h) => (await readdir(join(dataDir, 'jobs', h))).map((j) => join(dataDir, 'jobs', h, j))))).flat();
}
