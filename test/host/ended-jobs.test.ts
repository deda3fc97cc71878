/**
 * Ended jobs and their last lines are kept by the host agent on disk: a restarted agent (same id,
 * state dir and job dir) still lists a job that exited 3, with its exit code and every line within
 * `retainEndedMs` of its end, and only its record's last lines after that (counted from the end,
 * not from the restart). A running process job is adopted by the restarted agent: same pid, still
 * answering, its exit seen.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ManualClock, type Clock } from '../../src/common/clock.js';
import { MemoryDiscovery } from '../../src/discovery/memory-backend.js';
import { HostClient } from '../../src/host/client.js';
import { ENDED_JOBS_DEFAULTS } from '../../src/host/ended-jobs.js';
import { DockerRuntime } from '../../src/host/docker-runtime.js';
import { ProcessRuntime } from '../../src/host/process-runtime.js';
import type { Runtime } from '../../src/host/runtime.js';
import { startHostAgent } from '../../src/host/start.js';
import { fetchWhenUp } from '../../src/host/testing/jobs.js';
import type { Job } from '../../src/host/types.js';
import { jobRequest, waitFor } from './agent-scenarios.js';
import { needDocker } from '../support/services.js';
import { HOST_KEY, removeTestContainers, TEST_LABELS } from './support.js';

const run = randomUUID().slice(0, 6);
const dir = await mkdtemp(join(tmpdir(), 'flynn-ts-ended-'));
afterAll(async () => {
  await removeTestContainers(run);
  await rm(dir, { recursive: true, force: true });
});

async function agentOn(discovery: MemoryDiscovery, retainEndedMs = 60_000, makeRuntime: () => Runtime = () => new ProcessRuntime({ baseDir: join(dir, 'jobs') }), id = `ended-${run}`, clock?: Clock) {
  const runtime = makeRuntime();
  const handle = await startHostAgent({ key: HOST_KEY, id, advertiseAddr: '127.0.0.2', discovery, runtime, stateDir: join(dir, 'state'), retainEndedMs, stopGraceMs: 1000, ...(clock ? { clock } : {}) });
  const client = new HostClient({ url: handle.url, key: HOST_KEY });
  let closed: Promise<void> | undefined;
  return {
    client,
    close: () =>
      (closed ??= (async () => {
        await client.close();
        await handle.close();
        await runtime.close();
      })()),
  };
}

const linesOf = async (client: HostClient, id: string) => {
  const out: string[] = [];
  for await (const l of client.logs(id)) out.push(`${l.stream}:${l.line}`);
  return out;
};

describe('host agent: ended jobs and process jobs across agent restarts', () => {
  it('keeps a job that exited 3 with its last lines across a restart, and adopts a running job (same pid)', async () => {
    const discovery = new MemoryDiscovery();
    const first = await agentOn(discovery);
    // One line on stderr, first: a detached process job's two files are read apart, so the order of
    // lines across stdout and stderr is only as exact as the reads (docs/host.md); the checks below
    // hold whatever it is.
    const many = Array.from({ length: ENDED_JOBS_DEFAULTS.lines + 20 }, (_, i) => (i === 0 ? 'echo l0 >&2' : `echo l${i}`)).join('; ');
    const crash = await first.client.createJob(jobRequest(run, { type: 'run', cmd: ['sh', '-c', `${many}; echo last; exit 3`] }));
    const web = await first.client.createJob(jobRequest(run, { ports: [{ port: 8080, proto: 'tcp', service: `app${run}-web` }] }));
    const url = `http://127.0.0.2:${web.boundPorts[0]?.hostPort}`;
    expect(await fetchWhenUp(url)).toBe(`hello from ${web.id}`);
    await waitFor('the crash', async () => ((await first.client.getJob(crash.id)).state === 'crashed' ? true : undefined));
    const { pid } = JSON.parse(await readFile(join(dir, 'jobs', `ended-${run}`, web.id, 'job.json'), 'utf8')) as { pid: number };
    await first.close();
    expect(await fetchWhenUp(url)).toBe(`hello from ${web.id}`); // the process outlives its agent

    const startAt = Date.now();
    const second = await agentOn(discovery, 60_000);
    console.log(`[measured] process agent restart: started and adopted 1 running + 1 ended job in ${Date.now() - startAt} ms`);
    let third: Awaited<ReturnType<typeof agentOn>> | undefined;
    try {
      expect(await second.client.getJob(web.id)).toMatchObject({ state: 'up' });
      expect(JSON.parse(await readFile(join(dir, 'jobs', `ended-${run}`, web.id, 'job.json'), 'utf8')).pid).toBe(pid);
      expect(await fetchWhenUp(url)).toBe(`hello from ${web.id}`);
      const ended = await second.client.getJob(crash.id);
      expect(ended).toMatchObject({ state: 'crashed', exit: { code: 3, reason: 'exit' }, updatedAt: (await second.client.listEndedJobs()).find((j) => j.id === crash.id)?.updatedAt });
      // Within retainEndedMs of its end the restarted agent still has the runtime's copy: every line.
      const all = await linesOf(second.client, crash.id);
      expect(all).toHaveLength(ENDED_JOBS_DEFAULTS.lines + 21);
      expect(all).toEqual(expect.arrayContaining(['stderr:l0', 'stdout:last', `stdout:l${ENDED_JOBS_DEFAULTS.lines + 19}`]));
      await second.close();

      // Restarted again once retainEndedMs has passed since the end (not since the restart): forgotten
      // by the runtime at once, answered from disk, the last lines only.
      // Its clock reads retainEndedMs after the end, however fast the test got here.
      const retainEndedMs = 1000;
      third = await agentOn(discovery, retainEndedMs, undefined, undefined, new ManualClock(Date.parse(ended.updatedAt) + retainEndedMs));
      expect((await third.client.listJobs()).map((j: Job) => j.id)).toEqual([web.id]);
      expect(await third.client.getJob(crash.id)).toMatchObject({ state: 'crashed', exit: { code: 3 }, updatedAt: ended.updatedAt });
      const lines = await linesOf(third.client, crash.id);
      expect(lines).toHaveLength(ENDED_JOBS_DEFAULTS.lines);
      expect(lines).toEqual(expect.arrayContaining(['stdout:last', `stdout:l${ENDED_JOBS_DEFAULTS.lines + 19}`]));
      expect(lines).not.toContain('stdout:l1');
      await waitFor('the runtime to delete the job’s files', async () => (existsSync(join(dir, 'jobs', `ended-${run}`, crash.id)) ? undefined : true));
      // The adopted job's exit is seen, and it is kept too.
      await third.client.stopJob(web.id, { graceMs: 1000 });
      expect((await third.client.listEndedJobs()).map((j) => j.id)).toEqual(expect.arrayContaining([crash.id, web.id]));
    } finally {
      const last = third ?? second;
      await last.client.stopJob(web.id, { graceMs: 500 }).catch(() => {});
      await second.close();
      await third?.close();
      await discovery.close();
    }
  });
});

describe.runIf(await needDocker('ended jobs on Docker'))('host agent on Docker: ended jobs outlive their containers and the agent', () => {
  it('lists a job that exited 3 with its last lines after an agent restart, once its container is removed', async () => {
    const discovery = new MemoryDiscovery();
    const docker = () => new DockerRuntime({ labels: TEST_LABELS(run) });
    const first = await agentOn(discovery, 60_000, docker, `ended-d-${run}`);
    const crash = await first.client.createJob(jobRequest(run, { type: 'run', cmd: ['sh', '-c', 'echo one; echo two >&2; exit 3'] }));
    await waitFor('the crash', async () => ((await first.client.getJob(crash.id)).state === 'crashed' ? true : undefined));
    await first.close();
    const second = await agentOn(discovery, 200, docker, `ended-d-${run}`);
    try {
      await waitFor('the container to be removed', async () => ((await second.client.listJobs()).some((j: Job) => j.id === crash.id) ? undefined : true));
      expect(await second.client.getJob(crash.id)).toMatchObject({ state: 'crashed', exit: { code: 3, reason: 'exit' } });
      expect((await linesOf(second.client, crash.id)).sort()).toEqual(['stderr:two', 'stdout:one']);
    } finally {
      await second.close();
      await discovery.close();
    }
  });
});
