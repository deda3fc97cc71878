import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Discovery } from '../../src/discovery/discovery.js';
import { MemoryDiscovery } from '../../src/discovery/memory-backend.js';
import { startHostAgent, type HostAgentHandle } from '../../src/host/start.js';
import { HostClient, type JobRequest } from '../../src/host/client.js';
import type { Runtime } from '../../src/host/runtime.js';
import { crashCmd, fetchWhenUp, HTTP_SERVER_CMD, MEMORY_HOG_CMD } from '../../src/host/testing/jobs.js';
import type { Job, JobEvent, JobState } from '../../src/host/types.js';
import { until } from '../../src/common/until.js';
import { HOST_KEY } from './support.js';

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const got = await probe();
    if (got !== undefined && got !== false) return got;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

export function jobRequest(run: string, over: Partial<JobRequest> = {}): JobRequest {
  return { id: `job-${randomUUID().slice(0, 8)}`, app: `app${run}`, release: 'r1', type: 'web', cmd: HTTP_SERVER_CMD, ...over };
}

/** The end-to-end scenarios of the agent, run against each runtime. */
export function describeAgentScenarios(name: string, makeRuntime: () => Runtime, run: string): void {
  describe(`host agent on the ${name} runtime`, () => {
    let discovery: Discovery;
    let runtime: Runtime;
    let host: HostAgentHandle;
    let client: HostClient;
    const events: JobEvent[] = [];
    const abort = new AbortController();

    beforeAll(async () => {
      discovery = new MemoryDiscovery();
      runtime = makeRuntime();
      host = await startHostAgent({ key: HOST_KEY, id: `h-${name}-${run}`, advertiseAddr: '127.0.0.2', discovery, runtime, tags: { disk: 'ssd' }, capacity: { memoryBytes: 2 * 1024 ** 3 }, stopGraceMs: 3000 });
      client = new HostClient({ url: host.url, key: HOST_KEY });
      void (async () => {
        for await (const e of client.events({ since: 0, signal: abort.signal })) events.push(e);
      })();
    });

    afterAll(async () => {
      abort.abort();
      for (const job of await client.listJobs().catch(() => [] as Job[])) await client.stopJob(job.id, { graceMs: 500 }).catch(() => {});
      await client.close();
      await host.close();
      await runtime.close();
      await discovery.close();
    });

    const statesOf = (id: string): JobState[] => events.filter((e) => e.job.id === id).map((e) => e.job.state);

    it('runs an HTTP job on the advertised address with its flynn env, streams its logs, and stops it to down', async () => {
      const service = `app${run}-web`;
      const job = await client.createJob(jobRequest(run, { ports: [{ port: 8080, proto: 'tcp', service }] }));
      expect(job.state).toBe('up');
      const hostPort = job.boundPorts[0]?.hostPort;
      const url = `http://127.0.0.2:${hostPort}`;
      expect(await fetchWhenUp(url)).toBe(`hello from ${job.id}`);
      const env = JSON.parse(await fetchWhenUp(`${url}/env`)) as Record<string, string>;
      expect(env).toMatchObject({ FLYNN_APP: `app${run}`, FLYNN_PROCESS_TYPE: 'web', FLYNN_JOB_ID: job.id, HOSTNAME: job.id });
      expect(env.PORT).toBe(name === 'process' ? String(hostPort) : '8080');

      // The service is registered once the port really serves, a moment after the job is up.
      const instances = await waitFor('the job service in discovery', async () => {
        const found = await discovery.instances(service);
        return found.length > 0 ? found : undefined;
      });
      expect(instances.map((i) => i.addr)).toEqual([`127.0.0.2:${hostPort}`]);
      expect(instances[0]?.meta).toMatchObject({ jobId: job.id, app: `app${run}`, type: 'web', release: 'r1' });

      // stdout and stderr are separate pipes: the stderr line may land a moment after the answer.
      const lines = await waitFor('both log lines', async () => {
        const got = [];
        for await (const line of client.logs(job.id, { lines: 10 })) got.push(line);
        return got.length >= 2 ? got : undefined;
      });
      expect(lines).toContainEqual(expect.objectContaining({ stream: 'stderr', line: 'this goes to stderr' }));
      expect(lines).toContainEqual(expect.objectContaining({ stream: 'stdout', line: `listening on ${env.PORT}` }));

      // Follow from the last line of history: once that line arrives, the follow is connected
      // and the stop below cannot race ahead of it.
      let connected!: () => void;
      const following = new Promise<void>((resolve) => (connected = resolve));
      const follow = (async () => {
        const seen: string[] = [];
        for await (const line of client.logs(job.id, { follow: true, lines: 1 })) {
          seen.push(line.line);
          connected();
        }
        return seen;
      })();
      await following;
      const stopped = await client.stopJob(job.id);
      expect(stopped.state).toBe('down');
      expect(await follow).toContain('got SIGTERM');
      expect(await discovery.instances(service)).toEqual([]);
      await waitFor('the down event', () => statesOf(job.id).includes('down'));
      expect(statesOf(job.id)).toEqual(['pending', 'starting', 'up', 'stopping', 'down']);
      expect((await client.status()).jobs).toBe(0);
    });

    it('reports a crashing job as crashed with its exit code and takes its service away', async () => {
      const service = `app${run}-crash`;
      const job = await client.createJob(jobRequest(run, { cmd: crashCmd(7), ports: [{ port: 8080, proto: 'tcp', service }] }));
      const crashed = await waitFor('crashed', async () => {
        const j = await client.getJob(job.id);
        return TERMINAL.has(j.state) ? j : undefined;
      });
      expect(crashed.state).toBe('crashed');
      expect(crashed.exit).toEqual({ code: 7, reason: 'exit' });
      expect(crashed.error?.code).toBe('FLYNN_ERR_HOST_JOB_CRASHED');
      expect(await discovery.instances(service)).toEqual([]);
    });

    it('registers a job service only once its port serves, not while the app is still booting', async () => {
      const service = `app${run}-slow`;
      // Listens only when told (SIGUSR1): booting lasts as long as the test wants, however loaded the machine.
      const slowBoot = ['node', '-e', "process.on('SIGUSR1', () => require('http').createServer((q, r) => r.end('late')).listen(Number(process.env.PORT))); console.log('booting'); setInterval(() => {}, 1000)"];
      const job = await client.createJob(jobRequest(run, { cmd: slowBoot, ports: [{ port: 8080, proto: 'tcp', service }] }));
      await until(client.logs(job.id, { follow: true }), (l) => l.line === 'booting', { timeoutMs: 15_000, what: 'the booting line' });
      expect((await client.getJob(job.id)).state).toBe('up');
      // A window for a wrong registration to show (an absence cannot be waited for): a slower machine only makes it longer.
      await new Promise((r) => setTimeout(r, 1000));
      expect(await discovery.instances(service)).toEqual([]);
      await client.signalJob(job.id, 'SIGUSR1');
      const found = await waitFor('the service once the app listens', async () => {
        const got = await discovery.instances(service);
        return got.length > 0 ? got : undefined;
      });
      expect(found[0]?.addr).toBe(`127.0.0.2:${job.boundPorts[0]?.hostPort}`);
      expect(await fetchWhenUp(`http://${found[0]?.addr}`)).toBe('late');
      await client.stopJob(job.id, { graceMs: 500 });
    });

    it('kills a job over its memory limit and reports it crashed for oom', async () => {
      const job = await client.createJob(jobRequest(run, { cmd: MEMORY_HOG_CMD, limits: { memoryBytes: 96 * 1024 * 1024 } }));
      const ended = await waitFor('oom', async () => {
        const j = await client.getJob(job.id);
        return TERMINAL.has(j.state) ? j : undefined;
      });
      expect(ended).toMatchObject({ state: 'crashed', exit: { reason: 'oom', code: 137 }, error: { code: 'FLYNN_ERR_HOST_JOB_OOM' } });
    });

    it('reports a job whose command cannot start as failed (process) or crashed with 127 (docker-init), and keeps nothing', async () => {
      const created = await client.createJob(jobRequest(run, { cmd: ['/no/such/binary'], ports: [{ port: 8080, proto: 'tcp', service: `app${run}-broken` }] }));
      const job = await waitFor('the job to end', async () => {
        const j = await client.getJob(created.id);
        return TERMINAL.has(j.state) ? j : undefined;
      });
      if (name === 'process') {
        expect(job).toMatchObject({ state: 'failed', error: { code: 'FLYNN_ERR_HOST_RUNTIME' } });
        expect(await runtime.inspect(`h-${name}-${run}`, job.id)).toBeUndefined();
      } else {
        expect(job).toMatchObject({ state: 'crashed', exit: { code: 127 } });
        expect((await runtime.inspect(`h-${name}-${run}`, job.id))?.running).toBe(false);
      }
      expect(await discovery.instances(`app${run}-broken`)).toEqual([]);
      expect((await client.status()).jobs).toBe(0);
    });

    it('stops a job asked to stop while it is still starting', async () => {
      const spec = jobRequest(run);
      const creating = client.createJob(spec);
      await waitFor('the job to exist', () => client.getJob(spec.id).then(() => true, () => undefined));
      const stopped = await client.stopJob(spec.id, { graceMs: 2000 });
      expect(stopped.state).toBe('down');
      expect((await creating).id).toBe(spec.id);
      expect((await runtime.inspect(`h-${name}-${run}`, spec.id))?.running).toBe(false);
    });

    it('registers itself as flynn-host with its id, API address, tags and capacity', async () => {
      const hosts = await discovery.instances('flynn-host');
      const me = hosts.find((h) => h.meta.id === `h-${name}-${run}`);
      expect(me?.addr).toBe(host.url.replace('http://', ''));
      expect(me?.meta.addr).toBe(me?.addr);
      expect(JSON.parse(me?.meta.tags ?? '')).toEqual({ disk: 'ssd' });
      expect(JSON.parse(me?.meta.capacity ?? '')).toEqual({ memoryBytes: 2 * 1024 ** 3 });
      const status = await client.status();
      expect(status).toMatchObject({ id: `h-${name}-${run}`, addr: me?.addr, tags: { disk: 'ssd' }, capacity: { memoryBytes: 2 * 1024 ** 3 }, runtime: name });
      await host.close();
      expect((await discovery.instances('flynn-host')).find((h) => h.meta.id === `h-${name}-${run}`)).toBeUndefined();
    });
  });
}

const TERMINAL = new Set<JobState>(['down', 'crashed', 'failed']);
