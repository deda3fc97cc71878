import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { checkStoreFile, loadOrCreateClusterId, loadOrCreateControllerKey, lockDataDir, makeDataDirPrivate } from '../../src/bootstrap/state-files.js';
import { loadOrCreateSelfSigned } from '../../src/common/tls/self-signed.js';
import { startCluster } from '../../src/bootstrap/cluster.js';
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

  it('refuses a key cut short even when what is left looks like a key', async () => {
    const key = await loadOrCreateControllerKey(dir);
    await writeFile(join(dir, 'controller-key'), key.slice(0, 24));
    const err = await loadOrCreateControllerKey(dir).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'FLYNN_ERR_BOOTSTRAP_BAD_STATE_FILE', detail: { file: join(dir, 'controller-key') } });
    expect((err as Error).message).toBe(`${join(dir, 'controller-key')} is cut short (no final newline: truncated?): restore it, or delete it to start afresh (a new key is then generated and the CLI needs \`flynn server-add\` again)`);
  });

  it('refuses a data dir whose cluster id is there but whose store is missing or empty, and passes a fresh one', async () => {
    await expect(checkStoreFile(dir)).resolves.toBeUndefined();
    await loadOrCreateClusterId(dir);
    await writeFile(join(dir, 'controller.sqlite'), 'SQLite format 3\0...');
    await expect(checkStoreFile(dir)).resolves.toBeUndefined();
    for (const [state, make] of [
      ['empty', () => writeFile(join(dir, 'controller.sqlite'), '')],
      ['missing', () => rm(join(dir, 'controller.sqlite'))],
    ] as const) {
      await make();
      const err = await checkStoreFile(dir).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'FLYNN_ERR_BOOTSTRAP_BAD_STATE_FILE', detail: { file: join(dir, 'controller.sqlite') } });
      expect((err as Error).message).toMatch(new RegExp(`^${join(dir, 'controller.sqlite')} is ${state} while ${join(dir, 'cluster-id')} says a cluster ran here .*--from-backup FILE.*delete ${join(dir, 'cluster-id')} too`));
      expect((err as Error).message).not.toContain('\n');
    }
  });

  it('does not start a cluster whose store was emptied: its apps would be stopped as strangers', async () => {
    await loadOrCreateClusterId(dir);
    await writeFile(join(dir, 'controller.sqlite'), '');
    const ports = { controller: 0, router: 0, routerHttps: 0, git: 0, shelf: 0 };
    await expect(startCluster({ runtime: 'process', host: '127.0.0.1', dataDir: dir, ports })).rejects.toMatchObject({ code: 'FLYNN_ERR_BOOTSTRAP_BAD_STATE_FILE', detail: { file: join(dir, 'controller.sqlite') } });
    expect((await stat(join(dir, 'controller.sqlite'))).size).toBe(0);
  });

  it('makes a data dir that was there already private (0700) before the start reads it', async () => {
    await chmod(dir, 0o755);
    // The emptied store stops this start right after the data dir is checked: no cluster to start and stop.
    await loadOrCreateClusterId(dir);
    await writeFile(join(dir, 'controller.sqlite'), '');
    await startCluster({ runtime: 'process', host: '127.0.0.1', dataDir: dir, ports: { controller: 0, router: 0, routerHttps: 0, git: 0, shelf: 0 } }).catch(() => undefined);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
  });

  it('says in one line that a data dir which is a file is not a directory', async () => {
    await writeFile(join(dir, 'file'), '');
    for (const d of [join(dir, 'file'), join(dir, 'file', 'sub')]) {
      await expect(makeDataDirPrivate(d)).rejects.toMatchObject({ code: 'FLYNN_ERR_BOOTSTRAP_INVALID_OPTIONS', message: `the data dir ${d} is not a directory (it or a parent is a file): pick another`, detail: { field: 'dataDir' } });
    }
  });

  it('refuses a torn or half-gone kept certificate instead of making one with a new pin', async () => {
    const made = await loadOrCreateSelfSigned({ dir, name: 'controller-tls' });
    const [certFile, keyFile] = [made.certFile, made.keyFile];
    const torn: Array<[string, string, RegExp]> = [
      [certFile, made.cert.slice(0, 300), /the certificate is not a PEM X\.509 certificate .*\(truncated or edited\?\): restore them from a copy, or delete both to make a new certificate/],
      [keyFile, made.key.slice(0, 100), /the key is not a PEM private key .*\(truncated or edited\?\)/],
      [keyFile, (await loadOrCreateSelfSigned({ dir: join(dir, 'other') })).key, /the key is not the certificate's \(truncated or edited\?\)/],
    ];
    for (const [file, text, message] of torn) {
      const kept = await readFile(file, 'utf8');
      await writeFile(file, text);
      const err = await loadOrCreateSelfSigned({ dir, name: 'controller-tls' }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'FLYNN_ERR_TLS_INVALID', detail: { certFile, keyFile } });
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message).not.toContain('\n');
      expect(await readFile(file, 'utf8')).toBe(text);
      await writeFile(file, kept);
    }
    await rm(keyFile);
    await expect(loadOrCreateSelfSigned({ dir, name: 'controller-tls' })).rejects.toThrow(/\(the key file is missing\)/);
    // A key without its certificate is a first start cut short: nobody pinned it, a new pair is made.
    await rm(certFile);
    await writeFile(keyFile, made.key);
    const again = await loadOrCreateSelfSigned({ dir, name: 'controller-tls' });
    expect(again.created).toBe(true);
    expect(again.pin).not.toBe(made.pin);
    expect((await loadOrCreateSelfSigned({ dir, name: 'controller-tls' })).pin).toBe(again.pin);
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
    expect((await readFile(join(dir, 'lock'), 'utf8')).trim()).toMatch(new RegExp(`^${process.pid} [0-9a-f-]{36}$`));
    await again();
  });

  it('takes over a lock of an earlier boot even when its pid is alive now (a pid named another process then)', async () => {
    const boot = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
    const other = spawn('sleep', ['30']);
    try {
      await writeFile(join(dir, 'lock'), `${other.pid} ${boot}\n`);
      await expect(lockDataDir(dir)).rejects.toMatchObject({ code: 'FLYNN_ERR_BOOTSTRAP_DATA_DIR_IN_USE', detail: { pid: other.pid } });
      // The same pid, recorded before the last reboot; and this very process's pid, as after a reboot that handed it out again.
      for (const pid of [other.pid, process.pid]) {
        await writeFile(join(dir, 'lock'), `${pid} 00000000-0000-0000-0000-000000000000\n`);
        const release = await lockDataDir(dir);
        expect((await readFile(join(dir, 'lock'), 'utf8')).trim()).toBe(`${process.pid} ${boot}`);
        await release();
      }
    } finally {
      other.kill();
    }
  });
});
