import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ProcessRuntime } from '../../src/host/process-runtime.js';
import type { RuntimeJobSpec } from '../../src/host/runtime.js';
import { alive } from '../support/processes.js';


async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 20));
  return !alive(pid);
}

const spec = (id: string): RuntimeJobSpec => ({
  hostId: 'h1',
  bindAddr: '127.0.0.1',
  ports: [],
  // A job with stdin talks to its agent over pipes: it cannot be adopted (detached jobs are: process-adopt.test.ts).
  job: { id, app: 'a', release: 'r', type: 'worker', cmd: ['sleep', '60'], env: {}, ports: [], limits: {}, meta: {}, stdin: true },
});

describe('process runtime: jobs a dead agent left behind', () => {
  let baseDir: string;
  beforeEach(async () => {
    baseDir = await mkdtemp(join(tmpdir(), 'flynn-ts-proc-recover-'));
  });
  afterEach(async () => {
    await rm(baseDir, { recursive: true, force: true });
  });

  it('records the job before spawning it, and a new runtime on the same dir kills a job with stdin the old one started', async () => {
    const old = new ProcessRuntime({ baseDir });
    await old.start(spec('j1'));
    const record = JSON.parse(await readFile(join(baseDir, 'h1', 'j1', 'job.json'), 'utf8')) as { pid: number; spec: RuntimeJobSpec };
    expect(record.spec.job.id).toBe('j1');
    expect(alive(record.pid)).toBe(true);
    // The old agent is gone without closing (as after a SIGKILL): the next one finds its job.
    const next = new ProcessRuntime({ baseDir });
    expect(await next.recover('h1')).toEqual([]);
    expect(await gone(record.pid)).toBe(true);
    await next.close();
    await old.close();
  });

  it('finds a job whose record has no pid yet (the agent died while spawning it) by its working directory', async () => {
    const dir = join(baseDir, 'h1', 'j2');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'job.json'), JSON.stringify({ spec: spec('j2') }));
    const orphan = spawn('sleep', ['60'], { cwd: dir, detached: true, stdio: 'ignore' });
    orphan.unref();
    const pid = orphan.pid ?? 0;
    expect(alive(pid)).toBe(true);
    const next = new ProcessRuntime({ baseDir });
    await next.recover('h1');
    expect(await gone(pid)).toBe(true);
    await next.close();
  });

  it('replaces a job whose record is torn (not JSON): its process, found by its working directory, is stopped and the job reported gone, the start goes on', async () => {
    const dir = join(baseDir, 'h1', 'j3');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'job.json'), JSON.stringify({ spec: spec('j3'), pid: 1 }).slice(0, 40));
    const orphan = spawn('sleep', ['60'], { cwd: dir, detached: true, stdio: 'ignore' });
    orphan.unref();
    const pid = orphan.pid ?? 0;
    const next = new ProcessRuntime({ baseDir });
    expect(await next.recover('h1')).toEqual([]);
    expect(await gone(pid)).toBe(true);
    await next.close();
  });
});
