/**
 * The process runtime's terminal (python3's pty module, src/host/pty-helper.ts): raw output kept
 * for a job that ends before it is attached, Ctrl-C and stop reaching the job on its pty, and one
 * line when python3 is missing.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { ProcessRuntime } from '../../src/host/process-runtime.js';
import type { OutputChunk, RuntimeJobSpec } from '../../src/host/runtime.js';

const baseDir = await mkdtemp(join(tmpdir(), 'flynn-ts-ptytest-'));
afterAll(() => rm(baseDir, { recursive: true, force: true }));

const spec = (cmd: string[], tty = true): RuntimeJobSpec => ({
  hostId: 'h',
  bindAddr: '127.0.0.1',
  ports: [],
  job: { id: `j-${randomUUID().slice(0, 8)}`, app: 'a', release: 'r', type: 'run', cmd, env: {}, ports: [], limits: {}, meta: {}, oneOff: true, stdin: true, tty },
});

async function text(output: AsyncIterable<OutputChunk> | undefined): Promise<string> {
  let all = '';
  for await (const c of output ?? []) all += c.data.toString();
  return all;
}

/** The job's output as it comes, and a promise that resolves once it contains `marker`. */
function reading(output: AsyncIterable<OutputChunk> | undefined, marker: string) {
  let all = '';
  let seen!: () => void;
  const shown = new Promise<void>((resolve) => (seen = resolve));
  const done = (async () => {
    for await (const c of output ?? []) {
      all += c.data.toString();
      if (all.includes(marker)) seen();
    }
    return all;
  })();
  return { shown, done };
}

/** The job's exit code, once the runtime has recorded its end. */
async function exitOf(rt: ProcessRuntime, id: string): Promise<number> {
  return vi.waitFor(
    async () => {
      const exit = (await rt.inspect('h', id))?.exit;
      if (!exit) throw new Error(`job ${id} has not ended`);
      return exit.code;
    },
    { timeout: 20_000, interval: 50 },
  );
}

describe('a terminal on the process runtime', () => {
  it('keeps the raw output of a job that ends before it is attached, and its exit status', async () => {
    await using rt = new ProcessRuntime({ baseDir });
    const s = spec(['sh', '-c', 'tty; printf "no newline"; exit 4']);
    await rt.start(s);
    expect(await exitOf(rt, s.job.id)).toBe(4);
    const stdio = rt.takeStdio('h', s.job.id);
    expect(await text(stdio?.output)).toMatch(/^\/dev\/pts\/\d+\r\nno newline$/);
  });

  it('ends a sleep with 130 on a Ctrl-C typed into its terminal, and stop reaches a job on a pty', async () => {
    await using rt = new ProcessRuntime({ baseDir });
    // Typed once the sleep runs on the terminal; a Ctrl-C that did not reach it would leave it its 100 s.
    const s = spec(['sh', '-c', 'echo ready; exec sleep 100']);
    await rt.start(s);
    const stdio = rt.takeStdio('h', s.job.id);
    const sleeping = reading(stdio?.output, 'ready');
    await sleeping.shown;
    stdio?.write(Buffer.from('\x03'));
    await sleeping.done;
    expect(await exitOf(rt, s.job.id)).toBe(130);

    const t = spec(['sh', '-c', 'trap "echo got-term; exit 7" TERM; echo trapping; while :; do sleep 0.1; done']);
    await rt.start(t);
    const trapping = reading(rt.takeStdio('h', t.job.id)?.output, 'trapping');
    await trapping.shown;
    await rt.stop('h', t.job.id, { graceMs: 5000 });
    expect(await trapping.done).toContain('got-term');
    expect(await exitOf(rt, t.job.id)).toBe(7);
  });

  it('counts a job on a pty against its memory limit, and kills it (oom) when over', async () => {
    await using rt = new ProcessRuntime({ baseDir, memorySampleMs: 100 });
    const s = spec(['python3', '-c', 'import time; b = bytearray(300 * 1024 * 1024); time.sleep(60)']);
    s.job.limits = { memoryBytes: 100 * 1024 * 1024 };
    await rt.start(s);
    const output = text(rt.takeStdio('h', s.job.id)?.output);
    expect(await exitOf(rt, s.job.id)).toBe(137);
    expect((await rt.inspect('h', s.job.id))?.exit?.reason).toBe('oom');
    await output;
  });

  it('says in one line that a terminal needs python3 when it is missing; without a terminal the job runs', async () => {
    await using rt = new ProcessRuntime({ baseDir, python: '/nonexistent/python3' });
    await expect(rt.start(spec(['true']))).rejects.toThrow(/^cannot start job j-\w+: a terminal on the process runtime needs python3 on the host \(\/nonexistent\/python3 not found\); without a terminal \(piped stdin\) it runs$/);
    const piped = spec(['cat'], false);
    await rt.start(piped);
    const stdio = rt.takeStdio('h', piped.job.id);
    stdio?.write(Buffer.from('x\n'));
    stdio?.end();
    expect(await exitOf(rt, piped.job.id)).toBe(0);
  });
});
