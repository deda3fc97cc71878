import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { until } from '../../src/common/until.js';
import { MemoryDiscovery } from '../../src/discovery/memory-backend.js';
import { startHostAgent } from '../../src/host/start.js';
import { HostClient } from '../../src/host/client.js';
import { DockerRuntime } from '../../src/host/docker-runtime.js';
import { ProcessRuntime } from '../../src/host/process-runtime.js';
import type { Runtime, RuntimeJobSpec } from '../../src/host/runtime.js';
import type { JobState } from '../../src/host/types.js';
import { needDocker } from '../support/services.js';
import { removeTestContainers, TEST_LABELS, HOST_KEY } from './support.js';

const run = randomUUID().slice(0, 6);
const baseDir = await mkdtemp(join(tmpdir(), 'flynn-ts-quick-exit-'));
const ENDED: JobState[] = ['down', 'crashed', 'failed'];

afterAll(async () => {
  await removeTestContainers(run);
  await rm(baseDir, { recursive: true, force: true });
});

function spec(hostId: string, id: string, cmd: string[]): RuntimeJobSpec {
  return { hostId, bindAddr: '127.0.0.3', ports: [], job: { id, app: 'quick', release: 'r1', type: 'run', cmd, env: {}, ports: [], limits: {}, meta: {} } };
}

/** `jobs` jobs that print two lines and exit at once; the log of each, read once its exit is known. */
async function quickJobsThroughRuntime(runtime: Runtime, jobs: number): Promise<string[][]> {
  const hostId = `quick-${run}`;
  const exits = runtime.events()[Symbol.asyncIterator]();
  const logs: string[][] = [];
  try {
    for (let i = 0; i < jobs; i++) {
      const id = `q${i}-${randomUUID().slice(0, 6)}`;
      await runtime.start(spec(hostId, id, ['sh', '-c', 'echo "out $0"; echo "err $0" >&2', String(i)]));
      for (;;) {
        const next = await exits.next();
        if (next.done || (next.value.type === 'exit' && next.value.jobId === id)) break;
      }
      const lines: string[] = [];
      for await (const l of runtime.logs(hostId, id)) lines.push(`${l.stream}:${l.line}`);
      logs.push(lines.sort());
      await runtime.remove(hostId, id);
    }
  } finally {
    await exits.return?.();
  }
  return logs;
}

const expected = (n: number) => Array.from({ length: n }, (_, i) => [`stderr:err ${i}`, `stdout:out ${i}`]);

describe('the output of a job that exits at once (process runtime)', () => {
  it('is complete in the log of each of 50 quick-exit jobs once the exit is published', async () => {
    const runtime = new ProcessRuntime({ baseDir: join(baseDir, 'runtime') });
    try {
      expect(await quickJobsThroughRuntime(runtime, 50)).toEqual(expected(50));
    } finally {
      await runtime.close();
    }
  }, 60_000);

  it('is complete in the agent API log of each of 30 `echo` jobs once the agent reports them down', async () => {
    const runtime = new ProcessRuntime({ baseDir: join(baseDir, 'agent') });
    const discovery = new MemoryDiscovery();
    const host = await startHostAgent({ key: HOST_KEY, id: `quick-agent-${run}`, advertiseAddr: '127.0.0.3', discovery, runtime, retainEndedMs: 60_000 });
    const client = new HostClient({ url: host.url, key: HOST_KEY });
    try {
      const logs: string[][] = [];
      for (let i = 0; i < 30; i++) {
        const id = `echo${i}-${randomUUID().slice(0, 6)}`;
        const events = await client.openEvents(); // subscribed before the job starts: its end is not missed
        await client.createJob({ id, app: 'quick', release: 'r1', type: 'run', cmd: ['echo', `hi ${i}`] });
        await until(events, (e) => e.job.id === id && ENDED.includes(e.job.state), { timeoutMs: 15_000, what: `${id} to end` });
        const lines: string[] = [];
        for await (const l of client.logs(id)) lines.push(l.line);
        logs.push(lines);
      }
      expect(logs).toEqual(Array.from({ length: 30 }, (_, i) => [`hi ${i}`]));
    } finally {
      await client.close();
      await host.close();
      await runtime.close();
      await discovery.close();
    }
  }, 60_000);
});

if (await needDocker('quick-exit output on docker')) {
  describe('the output of a job that exits at once (docker runtime)', () => {
    it('is complete in the log of each of 10 quick-exit containers once the exit is published', async () => {
      const runtime = new DockerRuntime({ labels: TEST_LABELS(run) });
      try {
        expect(await quickJobsThroughRuntime(runtime, 10)).toEqual(expected(10));
      } finally {
        await runtime.close();
      }
    }, 120_000);
  });
}
