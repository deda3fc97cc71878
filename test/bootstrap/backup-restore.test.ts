/**
 * `flynn cluster backup > file.tar` from one cluster (the real CLI binary, its stdout redirected),
 * and a fresh cluster on other ports and another data dir started from it (`fromBackup`): the
 * pushed app (its slug, git repo) and an app with env answer through the new router on their
 * routes, with the same cluster key, controller certificate pin and git host key.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster, type TestCluster } from '../../src/bootstrap/index.js';
import { serving } from '../support/npm-start.js';
import { pusher } from './pusher.js';

const exec = promisify(execFile);
const TSX = pathToFileURL(resolve('node_modules/tsx/dist/loader.mjs')).href;
const CLI = resolve('src/cli/main.ts');
/** Answers `$FOO` on $PORT. */
const WEB = ['node', '-e', `require('http').createServer((q, s) => s.end(process.env.FOO)).listen(Number(process.env.PORT))`];
const HOST = '127.0.0.47';
const ports = { controller: 0, router: 0, git: 0, shelf: 0 };

describe('cluster backup and restore', () => {
  let dirA = '';
  const work = { dir: '' };
  let restored: Cluster | undefined;
  const { ctx, push } = pusher(async () => {
    dirA = await mkdtemp(join(tmpdir(), 'flynn-ts-backup-a-'));
    return { ...(await startCluster({ runtime: 'process', host: HOST, dataDir: dirA, ports })), runId: 'backup' } as TestCluster;
  });
  afterAll(async () => {
    await restored?.close();
    for (const d of [dirA, work.dir]) if (d) await rm(d, { recursive: true, force: true });
  }, 60_000);

  it('backs a cluster up through the CLI and brings its apps back in a fresh cluster on other ports', async () => {
    work.dir = await mkdtemp(join(tmpdir(), 'flynn-ts-backup-'));
    const a = ctx.cluster;
    const pushed = await push('node-hello', 'hello');
    expect(pushed.code, pushed.output).toBe(0);
    await a.client.createRoute('hello', { type: 'http', domain: 'www.backup.test', service: 'hello-web' });
    await a.client.createApp({ name: 'envy' });
    const release = await a.client.createRelease('envy', { env: { FOO: 'kept in the backup' }, processes: { web: { cmd: WEB } } });
    await a.client.waitForDeployment('envy', (await a.client.deploy('envy', release.id)).id, { timeoutMs: 60_000 });
    await a.client.scale('envy', { web: 1 });
    await a.client.createRoute('envy', { type: 'http', domain: 'envy.flynn.local', service: 'envy-web' });
    expect((await serving(a.routerUrl, 'envy.flynn.local')).body).toBe('kept in the backup');

    // The real CLI, its stdout redirected to the file.
    const env = { ...process.env, FLYNNRC: join(work.dir, 'flynnrc'), HOME: work.dir };
    const flynn = (args: string) => exec('sh', ['-c', `"${process.execPath}" --import ${TSX} ${CLI} ${args}`], { env, cwd: work.dir });
    await flynn(`server-add -p ${a.controllerPin} a ${a.controllerUrl} ${a.key}`);
    const file = join(work.dir, 'backup.tar');
    await flynn(`cluster backup > ${file}`);
    expect((await stat(file)).size).toBeGreaterThan(10_000);
    // A terminal is no place for a tar: without a redirect or -o it says so (here: no tty, so it writes).
    expect((await flynn('cluster backup -o backup2.tar')).stderr).toMatch(/^Backup written to backup2\.tar \(\d+ bytes\)\.\n$/);
    expect((await stat(join(work.dir, 'backup2.tar'))).mode & 0o777).toBe(0o600);

    const dirB = join(work.dir, 'restored');
    restored = await startCluster({ runtime: 'process', host: HOST, dataDir: dirB, ports, fromBackup: file });
    const b = restored;
    expect(b.controllerUrl).not.toBe(a.controllerUrl);
    expect(b.shelfUrl).not.toBe(a.shelfUrl);
    expect([b.key, b.controllerPin, b.gitFingerprint]).toEqual([a.key, a.controllerPin, a.gitFingerprint]);
    expect((await b.client.listApps()).map((x) => x.name)).toEqual(['envy', 'hello']);
    expect(await b.client.getEnv('envy')).toEqual({ FOO: 'kept in the backup' });
    expect(await b.client.listAllRoutes()).toEqual(await a.client.listAllRoutes());
    // The slug's sha256 comes along (the restored hosts check the slug they download against it).
    const digests = async (c: Cluster) => (await c.client.listArtifacts()).map((x) => x.sha256);
    expect(await digests(a)).toEqual([expect.stringMatching(/^[0-9a-f]{64}$/)]);
    expect(await digests(b)).toEqual(await digests(a));
    // The slug comes from the new shelf (the release's URL was moved to it), the repo is there.
    expect((await serving(b.routerUrl, 'hello.flynn.local', 60_000)).body).toContain('Hello from flynn-ts');
    expect((await serving(b.routerUrl, 'www.backup.test', 60_000)).body).toContain('Hello from flynn-ts');
    expect((await serving(b.routerUrl, 'envy.flynn.local', 60_000)).body).toBe('kept in the backup');
    expect(await readdir(join(dirB, 'repos'))).toContain('hello.git');

    // A backup cut short, even at an entry boundary (a valid tar, missing the keys written last), or not a tar: one line, nothing started.
    const whole = await readFile(file);
    const beforeKeys = tarEntryOffset(whole, 'data/ssh_host_rsa_key');
    const bad: Array<[string, Buffer, RegExp]> = [
      ['at-entry.tar', whole.subarray(0, beforeKeys), /^\S+at-entry\.tar is cut short \(no flynn-backup-end\.json at its end\): copy the whole file again, or make a new backup$/],
      ['mid-entry.tar', whole.subarray(0, beforeKeys + 700), /^cannot read the backup \S+mid-entry\.tar: /],
      ['not-a-tar.tar', Buffer.from('hello, this is not a tar\n'.repeat(100)), /^(cannot read the backup \S+not-a-tar\.tar: |\S+not-a-tar\.tar is not a flynn-ts backup)/],
    ];
    for (const [name, bytes, message] of bad) {
      await writeFile(join(work.dir, name), bytes);
      const dir = join(work.dir, `from-${name}`);
      const err = await startCluster({ runtime: 'process', host: HOST, dataDir: dir, ports, fromBackup: join(work.dir, name) }).catch((e: unknown) => e);
      expect(err, name).toMatchObject({ code: 'FLYNN_ERR_BOOTSTRAP_INVALID_OPTIONS', detail: { field: 'fromBackup' } });
      expect((err as Error).message).toMatch(message);
      expect(await readdir(dir)).toEqual([]);
    }

    // A restore whose start fails after the files are in (a busy port): a plain start refuses the
    // half-restored data dir, and --from-backup again finishes it.
    const dirC = join(work.dir, 'restored-after-a-busy-port');
    await expect(startCluster({ runtime: 'process', host: HOST, dataDir: dirC, ports: { ...ports, router: a.routerPort }, fromBackup: file })).rejects.toMatchObject({ code: 'FLYNN_ERR_BOOTSTRAP_PORT_IN_USE' });
    await expect(startCluster({ runtime: 'process', host: HOST, dataDir: dirC, ports })).rejects.toThrow(`the restore of ${file} into ${dirC} did not finish (the start failed before the apps were in the store): start again with --from-backup ${file}`);
    const c = await startCluster({ runtime: 'process', host: HOST, dataDir: dirC, ports, fromBackup: file });
    try {
      expect((await c.client.listApps()).map((x) => x.name)).toEqual(['envy', 'hello']);
      expect([c.key, c.controllerPin, c.gitFingerprint]).toEqual([a.key, a.controllerPin, a.gitFingerprint]);
    } finally {
      await c.close();
    }
    expect(await readdir(dirC)).not.toContain('restoring-from-backup');

    // Only into a fresh data dir.
    await b.close();
    restored = undefined;
    await expect(startCluster({ runtime: 'process', host: HOST, dataDir: dirB, ports, fromBackup: file })).rejects.toThrow(/cannot restore .* it holds a cluster already \(controller.sqlite, repos, shelf, cluster-id\); restore into a new data dir/);
  }, 240_000);
});

/** Where the header of the tar entry `name` starts in `tar` (ustar: 512-byte headers, data padded to 512). */
function tarEntryOffset(tar: Buffer, name: string): number {
  for (let at = 0; at + 512 <= tar.length; ) {
    const entry = tar.toString('utf8', at, at + 100).replace(/\0.*$/s, '');
    const prefix = tar.toString('utf8', at + 345, at + 500).replace(/\0.*$/s, '');
    if ((prefix ? `${prefix}/${entry}` : entry) === name) return at;
    if (entry === '') break;
    const size = parseInt(tar.toString('utf8', at + 124, at + 136).replace(/\0.*$/s, '').trim() || '0', 8);
    at += 512 + Math.ceil(size / 512) * 512;
  }
  throw new Error(`no entry ${name} in the backup`);
}
