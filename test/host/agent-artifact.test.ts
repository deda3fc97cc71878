import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryDiscovery } from '../../src/discovery/memory-backend.js';
import { startHostAgent, type HostAgentHandle } from '../../src/host/start.js';
import { HostClient } from '../../src/host/client.js';
import { DockerRuntime } from '../../src/host/docker-runtime.js';
import { ProcessRuntime } from '../../src/host/process-runtime.js';
import type { Runtime } from '../../src/host/runtime.js';
import type { Job } from '../../src/host/types.js';
import { needDocker } from '../support/services.js';
import { waitFor } from './agent-scenarios.js';
import { removeTestContainers, TEST_LABELS, HOST_KEY } from './support.js';

const run = randomUUID().slice(0, 6);
const CONTENT = `artifact-${run}`;
let server: Server;
let fileUrl: string;
const baseDir = await mkdtemp(join(tmpdir(), 'flynn-ts-artifact-'));

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/slug.tgz') res.end(CONTENT);
    else res.writeHead(404).end('no such file');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fileUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/slug.tgz`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await removeTestContainers(run);
  await rm(baseDir, { recursive: true, force: true });
});

// Prints where SLUG_URL points and what the file there holds, and exits at once.
const SHOW_ARTIFACT = ['sh', '-c', 'echo "url=$SLUG_URL"; cat "${SLUG_URL#file://}"; echo'];

function describeArtifacts(name: string, makeRuntime: () => Runtime, expectedUrl: (artifactsDir: string, hostId: string, jobId: string) => string): void {
  describe(`job artifacts on the ${name} runtime`, () => {
    let host: HostAgentHandle;
    let client: HostClient;
    let runtime: Runtime;
    const discovery = new MemoryDiscovery();
    const hostId = `art-${name}-${run}`;
    const artifactsDir = join(baseDir, name);

    beforeAll(async () => {
      runtime = makeRuntime();
      host = await startHostAgent({ key: HOST_KEY, id: hostId, advertiseAddr: '127.0.0.3', discovery, runtime, artifactsDir, retainEndedMs: 3000, stopGraceMs: 500 });
      client = new HostClient({ url: host.url, key: HOST_KEY });
    });

    afterAll(async () => {
      for (const job of await client.listJobs().catch(() => [] as Job[])) await client.stopJob(job.id, { graceMs: 200 }).catch(() => {});
      await client.close();
      await host.close();
      await runtime.close();
      await discovery.close();
    });

    it('downloads the artifact on the host, hands it to the job as SLUG_URL, and deletes it once the job is removed', async () => {
      const id = `job-${randomUUID().slice(0, 8)}`;
      const job = await client.createJob({ id, app: 'art', release: 'r1', type: 'run', cmd: SHOW_ARTIFACT, artifact: { url: fileUrl } });
      expect(job.state).not.toBe('failed');
      const lines = await waitFor('the job output', async () => {
        const state = (await client.getJob(id)).state;
        if (state !== 'down' && state !== 'crashed') return undefined;
        const got: string[] = [];
        for await (const l of client.logs(id)) got.push(l.line);
        // Once the job has ended, its log is complete.
        return got;
      });
      expect(lines).toEqual([`url=${expectedUrl(artifactsDir, hostId, id)}`, CONTENT]);
      await waitFor('the artifact to be deleted', async () => !(await readdir(join(artifactsDir, hostId)).catch(() => [] as string[])).includes(id) || undefined, 15_000);
    });

    it('fails the job with FLYNN_ERR_HOST_ARTIFACT_FETCH when the artifact cannot be downloaded', async () => {
      const job = await client.createJob({ id: `job-${randomUUID().slice(0, 8)}`, app: 'art', release: 'r1', type: 'run', cmd: SHOW_ARTIFACT, artifact: { url: fileUrl.replace('slug.tgz', 'missing.tgz') } });
      expect(job.state).toBe('failed');
      expect(job.error?.code).toBe('FLYNN_ERR_HOST_ARTIFACT_FETCH');
      expect(job.error?.message).toContain('HTTP 404');
    });

    it('runs a job whose artifact has its recorded sha256, and fails one whose does not in one line, its log that line, and removes the file', async () => {
      const sha256 = createHash('sha256').update(CONTENT).digest('hex');
      const good = await client.createJob({ id: `job-${randomUUID().slice(0, 8)}`, app: 'art', release: 'r1', type: 'run', cmd: SHOW_ARTIFACT, artifact: { url: fileUrl, sha256 } });
      expect(good.state).not.toBe('failed');
      const id = `job-${randomUUID().slice(0, 8)}`;
      const bad = await client.createJob({ id, app: 'art', release: 'r1', type: 'run', cmd: SHOW_ARTIFACT, artifact: { url: fileUrl, sha256: 'ab'.repeat(32) } });
      expect(bad.state).toBe('failed');
      expect(bad.error).toEqual({ code: 'FLYNN_ERR_HOST_ARTIFACT_FETCH', message: expect.stringMatching(new RegExp(`^the slug /slug\\.tgz is damaged \\(sha256 ${sha256}, expected ${'ab'.repeat(32)}\\): push the app again`)) });
      const lines: string[] = [];
      for await (const l of client.logs(id)) lines.push(l.line);
      expect(lines).toEqual([bad.error?.message]);
      expect(await readdir(join(artifactsDir, hostId)).catch(() => [] as string[])).not.toContain(id);
    });

    it('refuses an artifact that is not an http(s) URL', async () => {
      await expect(client.createJob({ id: `job-${randomUUID().slice(0, 8)}`, app: 'art', release: 'r1', type: 'run', cmd: SHOW_ARTIFACT, artifact: { url: 'file:///etc/passwd' } })).rejects.toMatchObject({ code: 'FLYNN_ERR_HOST_INVALID_JOB' });
    });
  });
}

describeArtifacts('process', () => new ProcessRuntime({ baseDir: join(baseDir, 'jobs') }), (dir, hostId, jobId) => `file://${join(dir, hostId, jobId, 'slug.tgz')}`);

if (await needDocker('job artifacts on docker')) {
  describeArtifacts('docker', () => new DockerRuntime({ labels: TEST_LABELS(run) }), () => 'file:///flynn/slug.tgz');
}
