import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { loadOrCreateClusterId, loadOrCreateControllerKey, lockDataDir } from '../../src/bootstrap/state-files.js';
import { loadOrCreateHostKey } from '../../src/git/keys.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'flynn-ts-state-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the data dir state files', () => {
  it('creates the cluster id, controller key and host key once and reads the same ones back', async () => {
    const id = await loadOrCreateClusterId(dir);
    const key = await loadOrCreateControllerKey(dir);
    const hostKey = await loadOrCreateHostKey(join(dir, 'ssh_host_rsa_key'));
    expect(id).toMatch(/^[0-9a-f]{8}$/);
    expect(await loadOrCreateClusterId(dir)).toBe(id);
    expect(await loadOrCreateControllerKey(dir)).toBe(key);
    expect(await loadOrCreateHostKey(join(dir, 'ssh_host_rsa_key'))).toBe(hostKey);
    expect((await stat(join(dir, 'controller-key'))).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'ssh_host_rsa_key'))).mode & 0o777).toBe(0o600);
  });

  it('keeps one value when two starts race on an empty data dir', async () => {
    const ids = await Promise.all(Array.from({ length: 4 }, () => loadOrCreateClusterId(dir)));
    expect(new Set(ids).size).toBe(1);
  });

  it('refuses a torn file with one line naming it, and leaves it as it is', async () => {
    await writeFile(join(dir, 'cluster-id'), '3f2a');
    await expect(loadOrCreateClusterId(dir)).rejects.toMatchObject({
      code: 'FLYNN_ERR_BOOTSTRAP_BAD_STATE_FILE',
      message: expect.stringMatching(new RegExp(`^${join(dir, 'cluster-id')} is not a valid cluster id .*delete it to start afresh \\(the running containers of the old id are then not adopted\\)$`)),
      detail: { file: join(dir, 'cluster-id'), field: 'dataDir' },
    });
    expect(await readFile(join(dir, 'cluster-id'), 'utf8')).toBe('3f2a');

    await writeFile(join(dir, 'controller-key'), '');
    await expect(loadOrCreateControllerKey(dir)).rejects.toMatchObject({ code: 'FLYNN_ERR_BOOTSTRAP_BAD_STATE_FILE', detail: { file: join(dir, 'controller-key') } });

    const hostKey = await loadOrCreateHostKey(join(dir, 'ssh_host_rsa_key'));
    await writeFile(join(dir, 'ssh_host_rsa_key'), hostKey.slice(0, 200));
    const err = await loadOrCreateHostKey(join(dir, 'ssh_host_rsa_key')).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'FLYNN_ERR_GIT_INVALID_HOST_KEY', detail: { file: join(dir, 'ssh_host_rsa_key') } });
    expect((err as Error).message).not.toContain('\n');
    expect(await readFile(join(dir, 'ssh_host_rsa_key'), 'utf8')).toBe(hostKey.slice(0, 200));
  });

  it('lets one cluster at a time hold the data dir, and takes over the lock of a process that is gone', async () => {
    const release = await lockDataDir(dir);
    await expect(lockDataDir(dir)).rejects.toMatchObject({ code: 'FLYNN_ERR_BOOTSTRAP_DATA_DIR_IN_USE', detail: { pid: process.pid, file: join(dir, 'lock') } });
    await release();
    // A lock left by a SIGKILLed process.
    const dead = spawn('true');
    await new Promise((r) => dead.once('exit', r));
    await writeFile(join(dir, 'lock'), `${dead.pid}\n`);
    const again = await lockDataDir(dir);
    expect((await readFile(join(dir, 'lock'), 'utf8')).trim()).toBe(String(process.pid));
    await again();
  });
});
