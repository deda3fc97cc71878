import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../../src/common/atomic-file.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'flynn-ts-atomic-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('writeFileAtomic', () => {
  it('creates and replaces a file with the mode asked for, leaving no temp file behind', async () => {
    const file = join(dir, 'key');
    await writeFileAtomic(file, 'one\n', { mode: 0o600 });
    await writeFileAtomic(file, 'two\n', { mode: 0o600 });
    expect(await readFile(file, 'utf8')).toBe('two\n');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readdir(dir)).toEqual(['key']);
  });

  it('with exclusive, refuses an existing file and keeps it as it was', async () => {
    const file = join(dir, 'cluster-id');
    await writeFileAtomic(file, 'first', { exclusive: true });
    await expect(writeFileAtomic(file, 'second', { exclusive: true })).rejects.toMatchObject({ code: 'EEXIST' });
    expect(await readFile(file, 'utf8')).toBe('first');
    expect(await readdir(dir)).toEqual(['cluster-id']);
  });

  it('fails without touching the target when the directory does not exist', async () => {
    await expect(writeFileAtomic(join(dir, 'missing', 'f'), 'x')).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('leaves a whole old or new version when the writing process is SIGKILLed mid-write', async () => {
    const file = join(dir, 'state.json');
    // A writer rewriting a 1 MiB file as fast as it can, killed at several points.
    const script = join(dir, 'writer.mts');
    await writeFile(
      script,
      `import { writeFileAtomic } from ${JSON.stringify(new URL('../../src/common/atomic-file.ts', import.meta.url).pathname)};
for (let i = 0; ; i++) await writeFileAtomic(${JSON.stringify(file)}, JSON.stringify({ i, pad: 'x'.repeat(1 << 20) }));`,
    );
    for (const afterMs of [150, 300, 450]) {
      const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'ignore', 'inherit'] });
      const exited = new Promise((r) => child.once('exit', r));
      // Wait until the writer is writing, then kill it at some point of a write.
      for (let t = 0; t < 100 && !(await stat(file).catch(() => undefined)); t++) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, afterMs));
      child.kill('SIGKILL');
      await exited;
      const parsed = JSON.parse(await readFile(file, 'utf8')) as { i: number; pad: string };
      expect(parsed.pad).toHaveLength(1 << 20);
    }
  });
});
