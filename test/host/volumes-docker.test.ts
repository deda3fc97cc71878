import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryDiscovery } from '../../src/discovery/memory-backend.js';
import { startHostAgent, type HostAgentHandle } from '../../src/host/start.js';
import { HostClient } from '../../src/host/client.js';
import { DockerRuntime } from '../../src/host/docker-runtime.js';
import { ProcessRuntime } from '../../src/host/process-runtime.js';
import type { Runtime } from '../../src/host/runtime.js';
import type { Job } from '../../src/host/types.js';
import { needDocker } from '../support/services.js';
import { jobRequest, waitFor } from './agent-scenarios.js';
import { HOST_KEY, removeTestContainers, TEST_LABELS } from './support.js';

const run = randomUUID().slice(0, 6);
const dirs: string[] = [];
afterAll(async () => {
  await removeTestContainers(run);
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function volumesDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'flynn-ts-volumes-test-'));
  dirs.push(dir);
  return dir;
}

/** Run `sh -c script` as a one-off job and wait for its end; returns the ended job and its output. */
async function sh(client: HostClient, script: string, over: Parameters<typeof jobRequest>[1] = {}): Promise<{ job: Job; out: string }> {
  const started = await client.createJob(jobRequest(run, { cmd: ['sh', '-c', script], oneOff: true, ...over }));
  const job = await waitFor('the job to end', async () => {
    const j = await client.getJob(started.id);
    return ['down', 'crashed', 'failed'].includes(j.state) ? j : undefined;
  });
  let out = '';
  for await (const l of client.logs(started.id)) out += `${l.line}\n`;
  return { job, out };
}

/** An agent on `runtime` (volumes in `dir`, default a fresh one) for `fn`; everything is closed after. */
async function withAgent(id: string, runtime: Runtime, fn: (client: HostClient) => Promise<void>, dir?: string): Promise<void> {
  const discovery = new MemoryDiscovery();
  const host = await startHostAgent({ key: HOST_KEY, id, advertiseAddr: '127.0.0.2', discovery, runtime, volumesDir: dir ?? (await volumesDir()), stopGraceMs: 1000 });
  const client = new HostClient({ url: host.url, key: HOST_KEY });
  try {
    await fn(client);
  } finally {
    await client.close();
    await host.close();
    await runtime.close();
    await discovery.close();
  }
}

describe.runIf(await needDocker('host volumes'))('host volumes on Docker', () => {
  it('keeps a volume across jobs and agent restarts, owned by the job user, and refuses bad requests', async () => {
    const discovery = new MemoryDiscovery();
    const dir = await volumesDir();
    const id = `vol-${run}`;
    const runtime = new DockerRuntime({ labels: TEST_LABELS(run) });
    let host: HostAgentHandle = await startHostAgent({ key: HOST_KEY, id, advertiseAddr: '127.0.0.2', discovery, runtime, volumesDir: dir, stopGraceMs: 1000 });
    let client = new HostClient({ url: host.url, key: HOST_KEY });
    try {
      const created = await client.createVolume('data');
      expect(created).toMatchObject({ name: 'data', hostId: id, path: join(dir, id, 'data', 'data') });
      expect((await stat(created.path)).uid).toBe(1000);
      await expect(client.createVolume('data')).rejects.toMatchObject({ status: 409, code: 'FLYNN_ERR_HOST_VOLUME_EXISTS' });
      await expect(client.createVolume('Bad/Name')).rejects.toMatchObject({ status: 400 });
      await expect(client.getVolume('nope')).rejects.toMatchObject({ status: 404, code: 'FLYNN_ERR_HOST_VOLUME_NOT_FOUND' });
      await expect(client.createJob(jobRequest(run, { volumes: [{ name: 'nope', target: '/data' }] }))).rejects.toMatchObject({ status: 404, code: 'FLYNN_ERR_HOST_VOLUME_NOT_FOUND' });
      await expect(client.createJob(jobRequest(run, { volumes: [{ name: 'data', target: 'relative' }] }))).rejects.toMatchObject({ status: 400 });
      await expect(client.createJob(jobRequest(run, { volumes: [{ name: 'data', target: '/a' }, { name: 'data', target: '/a' }] }))).rejects.toMatchObject({ status: 400 });

      const wrote = await sh(client, 'echo kept > /data/file && id -u && ls -ln /data', { volumes: [{ name: 'data', target: '/data' }] });
      expect(wrote.job.state).toBe('down');
      expect(wrote.out).toMatch(/^1000\n/);
      const ro = await sh(client, 'cat /data/file; echo x > /data/other', { volumes: [{ name: 'data', target: '/data', readOnly: true }] });
      expect(ro.out).toContain('kept');
      expect(ro.job.state).toBe('crashed');

      // A live job holds its volume: delete is refused until it ends.
      const holder = await client.createJob(jobRequest(run, { cmd: ['sleep', '60'], volumes: [{ name: 'data', target: '/data' }] }));
      await expect(client.deleteVolume('data')).rejects.toMatchObject({ status: 409, code: 'FLYNN_ERR_HOST_VOLUME_IN_USE' });
      await client.stopJob(holder.id, { graceMs: 200 });

      // A new agent (same host id and dir) finds the volume and its data.
      await client.close();
      await host.close();
      host = await startHostAgent({ key: HOST_KEY, id, advertiseAddr: '127.0.0.2', discovery, runtime, volumesDir: dir, stopGraceMs: 1000 });
      client = new HostClient({ url: host.url, key: HOST_KEY });
      expect((await client.listVolumes()).map((v) => v.name)).toEqual(['data']);
      expect((await sh(client, 'cat /data/file', { volumes: [{ name: 'data', target: '/data' }] })).out).toBe('kept\n');

      await client.deleteVolume('data');
      expect(await client.listVolumes()).toEqual([]);
      await expect(client.deleteVolume('data')).rejects.toMatchObject({ status: 404 });
    } finally {
      await client.close();
      await host.close();
      await runtime.close();
      await discovery.close();
    }
  });

  it('gives a job an alias the other jobs reach it by on the job network', () =>
    withAgent(`alias-${run}`, new DockerRuntime({ labels: TEST_LABELS(run) }), async (client) => {
      const alias = `svc-${run}.flynn`;
      const server = await client.createJob(jobRequest(run, { alias, ports: [{ port: 8080, proto: 'tcp' }] }));
      const got = await waitFor('the alias to answer', async () => {
        const r = await sh(client, `curl -sf http://${alias}:8080/`);
        return r.job.state === 'down' ? r.out : undefined;
      });
      expect(got).toContain(`hello from ${server.id}`);
      await expect(client.createJob(jobRequest(run, { alias: 'Not An Alias' }))).rejects.toMatchObject({ status: 400 });
    }));

  it('the process runtime refuses jobs with volumes', async () => {
    const base = await volumesDir();
    await withAgent(`proc-${run}`, new ProcessRuntime({ baseDir: join(base, 'jobs') }), async (client) => {
      await client.createVolume('data');
      await expect(client.createJob(jobRequest(run, { volumes: [{ name: 'data', target: '/data' }] }))).rejects.toMatchObject({ status: 400, code: 'FLYNN_ERR_HOST_VOLUMES_UNSUPPORTED' });
    }, base);
  });
});
