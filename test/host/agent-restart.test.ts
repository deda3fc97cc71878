import { randomUUID } from 'node:crypto';
import Dockerode from 'dockerode';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryDiscovery } from '../../src/discovery/memory-backend.js';
import { startHostAgent } from '../../src/host/start.js';
import { HostClient } from '../../src/host/client.js';
import { DOCKER_LABELS } from '../../src/host/docker-labels.js';
import { DockerRuntime } from '../../src/host/docker-runtime.js';
import { fetchWhenUp } from '../../src/host/testing/jobs.js';
import { needDocker } from '../support/services.js';
import { jobRequest, waitFor } from './agent-scenarios.js';
import { removeTestContainers, TEST_LABELS, HOST_KEY } from './support.js';

const run = randomUUID().slice(0, 6);
const docker = new Dockerode();
afterAll(() => removeTestContainers(run));

async function containersOf(hostId: string, jobId?: string): Promise<Dockerode.ContainerInfo[]> {
  const label = [`${DOCKER_LABELS.host}=${hostId}`, `io.flynn-ts.test-run=${run}`];
  if (jobId) label.push(`${DOCKER_LABELS.job}=${jobId}`);
  return docker.listContainers({ all: true, filters: { label } });
}

describe.runIf(await needDocker('host agent restart and multi-host'))('host agents sharing one Docker engine', () => {
  it('adopts its running containers after an agent restart, without duplicating or leaking them', async () => {
    const discovery = new MemoryDiscovery();
    const id = `restart-${run}`;
    const service = `app${run}-web`;
    const runtime1 = new DockerRuntime({ labels: TEST_LABELS(run) });
    const first = await startHostAgent({ key: HOST_KEY, id, advertiseAddr: '127.0.0.2', discovery, runtime: runtime1 });
    const c1 = new HostClient({ url: first.url, key: HOST_KEY });
    const secret = `s3cret-${run}`;
    const job = await c1.createJob(jobRequest(run, { ports: [{ port: 8080, proto: 'tcp', service }], env: { SECRET: secret } }));
    const url = `http://127.0.0.2:${job.boundPorts[0]?.hostPort}`;
    expect(await fetchWhenUp(url)).toBe(`hello from ${job.id}`);
    await c1.close();
    await first.close();
    await runtime1.close();
    expect(await discovery.instances(service)).toEqual([]);
    expect(await fetchWhenUp(url)).toBe(`hello from ${job.id}`); // the container outlives its agent

    const runtime2 = new DockerRuntime({ labels: TEST_LABELS(run) });
    const second = await startHostAgent({ key: HOST_KEY, id, advertiseAddr: '127.0.0.2', discovery, runtime: runtime2, stopGraceMs: 2000 });
    const c2 = new HostClient({ url: second.url, key: HOST_KEY });
    try {
      const adopted = await c2.getJob(job.id);
      expect(adopted).toMatchObject({ state: 'up', boundPorts: job.boundPorts, app: job.app });
      // The env comes back from the container itself: its labels never held the values.
      expect(adopted.env).toEqual(job.env);
      expect(JSON.stringify((await containersOf(id, job.id))[0]?.Labels)).not.toContain(secret);
      const registered = await waitFor('the adopted job service in discovery', async () => {
        const found = await discovery.instances(service);
        return found.length > 0 ? found : undefined;
      });
      expect(registered.map((i) => i.addr)).toEqual([`127.0.0.2:${job.boundPorts[0]?.hostPort}`]);
      expect(await containersOf(id, job.id)).toHaveLength(1);
      // A job with the same id cannot be started twice, and a new job does not take the adopted port.
      await expect(c2.createJob(jobRequest(run, { id: job.id }))).rejects.toMatchObject({ code: 'FLYNN_ERR_HOST_JOB_EXISTS' });
      const other = await c2.createJob(jobRequest(run, { ports: [{ port: 8080, proto: 'tcp' }] }));
      expect(other.boundPorts[0]?.hostPort).not.toBe(job.boundPorts[0]?.hostPort);
      // Exits of adopted containers are still seen.
      await docker.getContainer((await containersOf(id, job.id))[0]?.Id as string).kill({ signal: 'SIGKILL' });
      const crashed = await waitFor('the adopted job to crash', async () => {
        const j = await c2.getJob(job.id);
        return j.state === 'crashed' ? j : undefined;
      });
      expect(crashed.exit?.code).toBe(137);
      expect(await discovery.instances(service)).toEqual([]);
      await c2.stopJob(other.id, { graceMs: 500 });
    } finally {
      await c2.close();
      await second.close();
      await runtime2.close();
      await discovery.close();
    }
  });

  it('runs two agents on 127.0.0.2 and 127.0.0.3 against one engine without touching each other’s jobs', async () => {
    const discovery = new MemoryDiscovery();
    const runtime = new DockerRuntime({ labels: TEST_LABELS(run) });
    const a = await startHostAgent({ key: HOST_KEY, id: `a-${run}`, advertiseAddr: '127.0.0.2', discovery, runtime, stopGraceMs: 2000 });
    const b = await startHostAgent({ key: HOST_KEY, id: `b-${run}`, advertiseAddr: '127.0.0.3', discovery, runtime, stopGraceMs: 2000 });
    const ca = new HostClient({ url: a.url, key: HOST_KEY });
    const cb = new HostClient({ url: b.url, key: HOST_KEY });
    try {
      expect(a.url).toMatch(/^http:\/\/127\.0\.0\.2:/);
      expect(b.url).toMatch(/^http:\/\/127\.0\.0\.3:/);
      const spec = jobRequest(run, { ports: [{ port: 8080, proto: 'tcp' }] });
      const [ja, jb] = await Promise.all([ca.createJob(spec), cb.createJob(spec)]); // same job id on both hosts
      expect(await fetchWhenUp(`http://127.0.0.2:${ja.boundPorts[0]?.hostPort}`)).toBe(`hello from ${spec.id}`);
      expect(await fetchWhenUp(`http://127.0.0.3:${jb.boundPorts[0]?.hostPort}`)).toBe(`hello from ${spec.id}`);
      expect((await containersOf(`a-${run}`))[0]?.Ports).toEqual([expect.objectContaining({ IP: '127.0.0.2', PublicPort: ja.boundPorts[0]?.hostPort })]);
      expect((await containersOf(`b-${run}`))[0]?.Ports).toEqual([expect.objectContaining({ IP: '127.0.0.3', PublicPort: jb.boundPorts[0]?.hostPort })]);

      expect((await ca.stopJob(spec.id)).state).toBe('down');
      expect((await cb.getJob(spec.id)).state).toBe('up');
      expect(await fetchWhenUp(`http://127.0.0.3:${jb.boundPorts[0]?.hostPort}`)).toBe(`hello from ${spec.id}`);
      expect((await ca.listJobs()).map((j) => j.hostId)).toEqual([`a-${run}`]);
      expect((await cb.listJobs()).map((j) => j.hostId)).toEqual([`b-${run}`]);
      expect((await discovery.instances('flynn-host')).map((h) => h.meta.id).sort()).toEqual([`a-${run}`, `b-${run}`]);
      expect((await cb.stopJob(spec.id)).state).toBe('down');
    } finally {
      await Promise.all([ca.close(), cb.close()]);
      await Promise.all([a.close(), b.close()]);
      await runtime.close();
      await discovery.close();
    }
  });

  it('reports a job whose image the engine lacks as failed, leaving no container', async () => {
    const discovery = new MemoryDiscovery();
    const runtime = new DockerRuntime({ labels: TEST_LABELS(run) });
    const host = await startHostAgent({ key: HOST_KEY, id: `img-${run}`, advertiseAddr: '127.0.0.2', discovery, runtime });
    const client = new HostClient({ url: host.url, key: HOST_KEY });
    try {
      const job = await client.createJob(jobRequest(run, { image: `flynn-ts/no-such-image-${run}:1` }));
      expect(job).toMatchObject({ state: 'failed', error: { code: 'FLYNN_ERR_HOST_RUNTIME' } });
      expect(job.error?.message).toMatch(/no-such-image/);
      expect(await containersOf(`img-${run}`)).toEqual([]);
    } finally {
      await client.close();
      await host.close();
      await runtime.close();
      await discovery.close();
    }
  });
});
