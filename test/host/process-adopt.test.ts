import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ProcessRuntime } from '../../src/host/process-runtime.js';
import { groupsWorkingIn } from '../../src/host/proc-stat.js';
import type { Runtime, RuntimeJobSpec } from '../../src/host/runtime.js';
import { alive } from '../support/processes.js';

const spec = (id: string, cmd: string[]): RuntimeJobSpec => ({
  hostId: 'h1',
  bindAddr: '127.0.0.1',
  ports: [],
  job: { id, app: 'a', release: 'r', type: 'worker', cmd, env: {}, ports: [], limits: {}, meta: {} },
});

async function exitOf(runtime: Runtime, id: string) {
  for (let i = 0; i < 200; i++) {
    const j = await runtime.inspect('h1', id);
    if (j?.exit) return j.exit;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`job ${id} did not end`);
}

async function lines(runtime: Runtime, id: string): Promise<string[]> {
  const out: string[] = [];
  for await (const l of runtime.logs('h1', id)) out.push(`${l.stream}:${l.line}`);
  return out;
}

describe('process runtime: detached jobs outlive their runtime', () => {
  let baseDir: string;
  beforeEach(async () => {
    baseDir = await mkdtemp(join(tmpdir(), 'flynn-ts-proc-adopt-'));
  });
  afterEach(async () => {
    // A job a failed test left running (each job is a process group of its own).
    for (const id of await readdir(join(baseDir, 'h1')).catch(() => [] as string[])) for (const pid of await groupsWorkingIn(join(baseDir, 'h1', id))) process.kill(-pid, 'SIGKILL');
    await rm(baseDir, { recursive: true, force: true });
  });

  it('reports the exit code and output of a job that ends under its runtime', async () => {
    const runtime = new ProcessRuntime({ baseDir });
    try {
      await runtime.start(spec('j0', ['sh', '-c', 'echo out; echo err >&2; exit 3']));
      expect(await exitOf(runtime, 'j0')).toEqual({ code: 3, reason: 'exit' });
      expect((await lines(runtime, 'j0')).sort()).toEqual(['stderr:err', 'stdout:out']);
    } finally {
      await runtime.close();
    }
  });

  it('adopts a running job (same pid), follows its output on, and reports its exit', async () => {
    const id = `j-${randomUUID().slice(0, 6)}`;
    const first = new ProcessRuntime({ baseDir });
    await first.start(spec(id, ['sh', '-c', 'echo before; while [ ! -e go ]; do sleep 0.05; done; echo after; exit 4']));
    const { pid } = JSON.parse(await readFile(join(baseDir, 'h1', id, 'job.json'), 'utf8')) as { pid: number };
    for (let i = 0; i < 100 && !(await lines(first, id)).includes('stdout:before'); i++) await new Promise((r) => setTimeout(r, 50));
    await first.close();
    process.kill(pid, 0); // still running without its runtime

    const second = new ProcessRuntime({ baseDir });
    try {
      const [adopted] = await second.recover('h1');
      expect(adopted).toMatchObject({ running: true, spec: { job: { id } } });
      expect(JSON.parse(await readFile(join(baseDir, 'h1', id, 'job.json'), 'utf8')).pid).toBe(pid);
      await import('node:fs/promises').then((fs) => fs.writeFile(join(baseDir, 'h1', id, 'go'), ''));
      expect(await exitOf(second, id)).toEqual({ code: 4, reason: 'exit' });
      expect(await lines(second, id)).toEqual(['stdout:before', 'stdout:after']);
    } finally {
      await second.close();
    }
  });

  it('reports a job that ended while no runtime watched it with its exit code, and one SIGKILLed as unknown', async () => {
    const first = new ProcessRuntime({ baseDir });
    await first.start(spec('quick', ['sh', '-c', 'sleep 0.3; echo done; exit 5']));
    await first.start(spec('killed', ['sleep', '60']));
    const { pid } = JSON.parse(await readFile(join(baseDir, 'h1', 'killed', 'job.json'), 'utf8')) as { pid: number };
    await first.close();
    process.kill(-pid, 'SIGKILL');
    // Both over while no runtime watches: the quick job's wrapper has written its exit code, the killed one is gone.
    await vi.waitFor(
      async () => {
        expect((await readFile(join(baseDir, 'h1', 'quick', 'exit'), 'utf8').catch(() => '')).trim()).toBe('5');
        expect(alive(pid)).toBe(false);
      },
      { timeout: 10_000, interval: 50 },
    );
    const second = new ProcessRuntime({ baseDir });
    try {
      const found = await second.recover('h1');
      const byId = new Map(found.map((j) => [j.spec.job.id, j]));
      expect(byId.get('quick')).toMatchObject({ running: false, exit: { code: 5, reason: 'exit' } });
      expect(byId.get('killed')).toMatchObject({ running: false, exit: { code: -1, reason: 'unknown' } });
      expect(await lines(second, 'quick')).toEqual(['stdout:done']);
    } finally {
      await second.close();
    }
  });

  it('does not adopt a live process that reuses a recorded pid (the start time differs)', async () => {
    const first = new ProcessRuntime({ baseDir });
    await first.start(spec('old', ['sleep', '60']));
    const file = join(baseDir, 'h1', 'old', 'job.json');
    const record = JSON.parse(await readFile(file, 'utf8')) as { pid: number; startTime: string };
    await first.close();
    process.kill(-record.pid, 'SIGKILL');
    // Pretend the pid now belongs to this test process: alive, but not the job.
    await import('node:fs/promises').then((fs) => fs.writeFile(file, JSON.stringify({ ...record, pid: process.pid })));
    const second = new ProcessRuntime({ baseDir });
    try {
      const [job] = await second.recover('h1');
      expect(job).toMatchObject({ running: false, exit: { reason: 'unknown' } });
    } finally {
      await second.close();
    }
  });
});
