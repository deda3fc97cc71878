/** The access log file: appended (0600), moved to `.1` past its size, opened again after a logrotate. */
import { mkdtemp, readFile, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openLogFile } from '../../src/common/log-file.js';

describe('openLogFile', () => {
  let dir = '';
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('appends to what is there, mode 0600, and moves the file to .1 once it passes maxBytes', async () => {
    dir = await mkdtemp(join(tmpdir(), 'flynn-ts-log-file-'));
    const path = join(dir, 'access.log');
    const first = openLogFile(path);
    first.write('one');
    await first.close();
    const log = openLogFile(path, { maxBytes: 20 });
    log.write('two');
    log.write('three');
    // 4 + 4 + 6 = 14 bytes: still one file; the next line passes 20.
    log.write('four-four');
    log.write('five');
    await log.close();
    expect(await readFile(`${path}.1`, 'utf8')).toBe('one\ntwo\nthree\n');
    expect(await readFile(path, 'utf8')).toBe('four-four\nfive\n');
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it('writes to a new file after reopen() when the old one was moved away', async () => {
    const path = join(dir, 'rotated.log');
    const log = openLogFile(path);
    const before = Array.from({ length: 20_000 }, (_, i) => `before ${i}`);
    for (const line of before) log.write(line);
    await rename(path, `${path}.old`);
    log.reopen();
    log.write('after');
    // close() waits for the stream reopen() ended (20 000 lines still buffered) as well as the current one.
    await log.close();
    expect(await readFile(`${path}.old`, 'utf8')).toBe(`${before.join('\n')}\n`);
    expect(await readFile(path, 'utf8')).toBe('after\n');
  });
});
