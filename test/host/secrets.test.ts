import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryDiscovery } from '../../src/discovery/memory-backend.js';
import { startHostAgent } from '../../src/host/start.js';
import { HostClient } from '../../src/host/client.js';
import { containerName } from '../../src/host/docker-labels.js';
import { DockerRuntime } from '../../src/host/docker-runtime.js';
import { ProcessRuntime } from '../../src/host/process-runtime.js';
import type { Runtime } from '../../src/host/runtime.js';
import { ShelfClient } from '../../src/shelf/client.js';
import { FsBlobStore } from '../../src/shelf/fs-blob-store.js';
import { startShelf } from '../../src/shelf/server.js';
import { shelfUrlSigner } from '../../src/shelf/signed-url.js';
import { needDocker } from '../support/services.js';
import { waitFor } from './agent-scenarios.js';
import { HOST_KEY, removeTestContainers, TEST_LABELS } from './support.js';

const run = randomUUID().slice(0, 6);
const SHELF_KEY = 'test-shelf-key';
const dockerHere = await needDocker('secrets in Docker labels');
afterAll(() => removeTestContainers(run));

interface Found {
  path: string;
  mode: number;
  dir: boolean;
  holdsSecret: boolean;
}

/** Every file and directory under `root`, with its permission bits and whether it holds `secret`. */
async function scan(root: string, secret: string): Promise<Found[]> {
  const out: Found[] = [];
  for (const entry of await readdir(root, { withFileTypes: true, recursive: true })) {
    const path = join(entry.parentPath, entry.name);
    const mode = (await stat(path)).mode & 0o777;
    if (entry.isDirectory()) out.push({ path, mode, dir: true, holdsSecret: false });
    else if (entry.isFile()) out.push({ path, mode, dir: false, holdsSecret: (await readFile(path, 'utf8')).includes(secret) });
  }
  return out;
}

/**
 * Start an agent on `runtime` with its job dirs, artifacts and a keyed shelf under one data dir,
 * run a job with a secret in its env whose slug comes from shelf by a signed URL, and hand back
 * what is left on disk while it runs.
 */
async function runSecretJob(runtime: Runtime, dataDir: string, secret: string, inspect?: (hostId: string, jobId: string) => Promise<void>): Promise<Found[]> {
  const discovery = new MemoryDiscovery();
  const shelf = await startShelf({ store: new FsBlobStore({ root: join(dataDir, 'shelf') }), host: '127.0.0.1', port: 0, key: SHELF_KEY });
  const shelfClient = new ShelfClient({ url: shelf.url, key: SHELF_KEY });
  const hostId = `sec-${runtime.name}-${run}`;
  const host = await startHostAgent({ key: HOST_KEY, id: hostId, advertiseAddr: '127.0.0.3', discovery, runtime, artifactsDir: join(dataDir, 'artifacts'), stopGraceMs: 500 });
  const client = new HostClient({ url: host.url, key: HOST_KEY });
  try {
    await shelfClient.put('/slugs/sec/1.tgz', 'slug bytes');
    const artifact = { url: shelfUrlSigner({ url: shelf.url, key: SHELF_KEY })(shelfClient.urlFor('/slugs/sec/1.tgz')) };
    // The job prints its secret too: its output must be as private as its env.
    const job = await client.createJob({ id: `sec-${run}`, app: `sec${run}`, release: 'r1', type: 'run', cmd: ['sh', '-c', 'echo "secret=$SECRET"; exec sleep 30'], env: { SECRET: secret }, artifact });
    expect(job.state).toBe('up');
    await waitFor('the job output', async () => {
      const lines: string[] = [];
      for await (const l of client.logs(job.id)) lines.push(l.line);
      return lines.includes(`secret=${secret}`) ? true : undefined;
    });
    await inspect?.(hostId, job.id);
    // Nor in any process's command line, which every user of the machine can list (ps).
    const commandLines = await new Promise<string>((resolve, reject) => execFile('ps', ['-eww', '-o', 'args='], { maxBuffer: 16 * 1024 * 1024 }, (err, out) => (err ? reject(err) : resolve(out))));
    expect(commandLines).toContain('sleep 30');
    expect(commandLines).not.toContain(secret);
    const found = await scan(dataDir, secret);
    await client.stopJob(job.id, { graceMs: 0 });
    return found;
  } finally {
    await client.close();
    await host.close();
    await shelfClient.close();
    await shelf.close();
    await discovery.close();
  }
}

function expectPrivate(found: Found[]): void {
  const open = found.filter((f) => (f.dir || f.holdsSecret || f.path.includes('/shelf/')) && (f.mode & 0o077) !== 0);
  expect(open.map((f) => `${f.path} ${f.mode.toString(8)}`)).toEqual([]);
}

describe('secrets at rest on a host', () => {
  it('keeps a job’s env, output, artifact and blobs out of reach of other users (process runtime)', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'flynn-ts-secrets-'));
    const runtime = new ProcessRuntime({ baseDir: join(dataDir, 'jobs') });
    const secret = `s3cret-${randomUUID()}`;
    try {
      const found = await runSecretJob(runtime, dataDir, secret);
      // job.json (the spec with its env), output.ndjson and the detached job's raw stdout hold it; all 0600, every directory 0700.
      expect(found.filter((f) => f.holdsSecret).map((f) => f.path.slice(f.path.lastIndexOf('/') + 1)).sort()).toEqual(['job.json', 'output.ndjson', 'stdout']);
      expect(found.filter((f) => f.path.endsWith('/slugs/sec/1.tgz')).map((f) => f.mode)).toEqual([0o600]);
      expectPrivate(found);
    } finally {
      await runtime.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('tightens its own job and artifact dirs to 0700, and refuses ones another user owns', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'flynn-ts-dirs-'));
    const discovery = new MemoryDiscovery();
    const mine = join(dataDir, 'mine');
    await mkdir(mine, { mode: 0o755 });
    await chmod(mine, 0o755);
    const runtime = new ProcessRuntime({ baseDir: mine });
    const host = await startHostAgent({ key: HOST_KEY, id: `dirs-${run}`, advertiseAddr: '127.0.0.3', discovery, runtime, artifactsDir: mine });
    const client = new HostClient({ url: host.url, key: HOST_KEY });
    try {
      const job = await client.createJob({ id: `dirs-${run}`, app: 'dirs', release: 'r1', type: 'run', cmd: ['true'] });
      expect(job.state).not.toBe('failed');
      expect((await stat(mine)).mode & 0o777).toBe(0o700);
      if (process.getuid?.() !== 0) return; // handing a directory to another user needs root
      const theirs = join(dataDir, 'theirs');
      await mkdir(theirs, { mode: 0o777 });
      await chown(theirs, 65534, 65534);
      const other = new ProcessRuntime({ baseDir: theirs });
      const otherHost = await startHostAgent({ key: HOST_KEY, id: `theirs-${run}`, advertiseAddr: '127.0.0.3', discovery, runtime: other, artifactsDir: theirs });
      const otherClient = new HostClient({ url: otherHost.url, key: HOST_KEY });
      try {
        const refused = await otherClient.createJob({ id: `theirs-${run}`, app: 'dirs', release: 'r1', type: 'run', cmd: ['true'] });
        expect(refused).toMatchObject({ state: 'failed', error: { code: 'FLYNN_ERR_HOST_INVALID_CONFIG', message: expect.stringContaining('not a directory owned by this user') } });
        const viaArtifact = await otherClient.createJob({ id: `theirs2-${run}`, app: 'dirs', release: 'r1', type: 'run', cmd: ['true'], artifact: { url: 'http://127.0.0.1:9/slug.tgz' } });
        expect(viaArtifact).toMatchObject({ state: 'failed', error: { message: expect.stringContaining('artifactsDir') } });
      } finally {
        await otherClient.close();
        await otherHost.close();
        await other.close();
      }
    } finally {
      await client.close();
      await host.close();
      await runtime.close();
      await discovery.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it.runIf(dockerHere)('keeps a job’s env out of its container labels and out of the data dir (Docker runtime)', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'flynn-ts-secrets-'));
    const runtime = new DockerRuntime({ labels: TEST_LABELS(run) });
    const secret = `s3cret-${randomUUID()}`;
    try {
      const found = await runSecretJob(runtime, dataDir, secret, async (hostId, jobId) => {
        const info = await new Dockerode().getContainer(containerName(hostId, jobId)).inspect();
        const labels = JSON.stringify(info.Config.Labels);
        expect(labels).toContain(jobId);
        expect(labels).not.toContain(secret);
        expect(info.Config.Env).toContain(`SECRET=${secret}`);
      });
      expect(found.filter((f) => f.holdsSecret)).toEqual([]);
      expectPrivate(found);
    } finally {
      await runtime.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
