import { execFile } from 'node:child_process';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { extract } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fingerprintOfKey, generatePrivateKey, publicKeyLine, startGitReceiver, GIT_TRACE_CHANNEL, PushRejectedError, type GitReceiver, type Push, type PushPreparation } from '../../src/git/index.js';

const exec = promisify(execFile);

/** Files of a tar stream, path → content. */
async function untar(stream: NodeJS.ReadableStream): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const ex = extract();
  ex.on('entry', (header, body, next) => {
    const chunks: Buffer[] = [];
    body.on('data', (c) => chunks.push(c as Buffer));
    body.on('end', () => {
      if (header.type === 'file') files.set(header.name, Buffer.concat(chunks).toString());
      next();
    });
  });
  const done = new Promise<void>((resolve, reject) => ex.on('finish', () => resolve()).on('error', reject));
  stream.pipe(ex);
  await done;
  return files;
}

describe('git receiver over real SSH', () => {
  let dir: string;
  let receiver: GitReceiver;
  const apps = new Set(['myapp', 'other', 'prepared']);
  const authorized = new Set<string>();
  const deploys: { app: string; files: Map<string, string>; fingerprint: string; preparation?: PushPreparation }[] = [];
  /** What preparePush handed out, and how often each was disposed of. */
  const preparations: (PushPreparation & { app: string; disposed: number })[] = [];
  let active = 0;
  let maxActivePerApp = 0;
  /** When set, each deploy waits here (used to prove two deploys overlap). */
  let barrier: ((app: string) => Promise<void>) | undefined;
  let goodKey: string;
  let badKey: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flynn-git-test-'));
    const hostKey = generatePrivateKey();
    goodKey = join(dir, 'id_good');
    badKey = join(dir, 'id_bad');
    const good = generatePrivateKey();
    await writeFile(goodKey, good, { mode: 0o600 });
    await writeFile(badKey, generatePrivateKey(), { mode: 0o600 });
    authorized.add(fingerprintOfKey(publicKeyLine(good)));
    receiver = await startGitReceiver({
      host: '127.0.0.1',
      port: 0,
      hostKey,
      reposDir: join(dir, 'repos'),
      platform: {
        authorize: async (key) => authorized.has(key.fingerprint),
        appExists: async (app) => apps.has(app),
        preparePush: (app) => {
          const p = {
            app,
            disposed: 0,
            async dispose() {
              p.disposed++;
            },
          };
          preparations.push(p);
          return p;
        },
        deploy: async (push: Push) => {
          active++;
          maxActivePerApp = Math.max(maxActivePerApp, active);
          try {
            push.output(`-----> Building ${push.app}...`);
            const files = await untar(push.archive);
            await (barrier ? barrier(push.app) : new Promise((r) => setTimeout(r, 200)));
            if (files.has('FAIL')) throw new PushRejectedError(`build failed: ${files.get('FAIL')?.trim()}`);
            deploys.push({ app: push.app, files, fingerprint: push.fingerprint, ...(push.preparation ? { preparation: push.preparation } : {}) });
            push.output('=====> deployed');
          } finally {
            active--;
          }
        },
      },
    });
  });

  afterAll(async () => {
    await receiver?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function repo(name: string, files: Record<string, string>): Promise<string> {
    const work = join(dir, 'work', name);
    await mkdir(work, { recursive: true });
    await exec('git', ['init', '-q', '-b', 'main', work]);
    for (const [f, c] of Object.entries(files)) await writeFile(join(work, f), c);
    await exec('git', ['-C', work, 'add', '.']);
    await exec('git', ['-C', work, '-c', 'user.email=t@t', '-c', 'user.name=t', 'commit', '-qm', 'init']);
    return work;
  }

  async function push(work: string, app: string, key: string, refspec = 'main', port = receiver.port): Promise<{ code: number; output: string }> {
    const ssh = `ssh -i ${key} -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -p ${port}`;
    try {
      const { stdout, stderr } = await exec('git', ['-C', work, 'push', `ssh://git@127.0.0.1:${port}/${app}.git`, refspec], {
        env: { ...process.env, GIT_SSH_COMMAND: ssh },
      });
      return { code: 0, output: stdout + stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, output: e.stdout + e.stderr };
    }
  }

  it('deploys a push of the main branch and streams the build to the pusher as remote: lines', async () => {
    const work = await repo('a', { 'server.js': 'console.log(1)', Procfile: 'web: node server.js' });
    const { code, output } = await push(work, 'myapp', goodKey);
    expect(output).toContain('remote: -----> Building myapp...');
    expect(output).toContain('remote: =====> deployed');
    expect(code).toBe(0);
    const deploy = deploys.at(-1);
    expect(deploy?.app).toBe('myapp');
    expect(deploy?.files.get('Procfile')).toBe('web: node server.js');
    expect(deploy?.fingerprint).toMatch(/^SHA256:/);
  });

  it('prepares a push when it begins, hands the preparation to its deploy and disposes of it when the push ends', async () => {
    const before = preparations.length;
    const work = await repo('prep', { 'server.js': 'console.log(2)' });
    const { code } = await push(work, 'prepared', goodKey);
    expect(code).toBe(0);
    expect(preparations.length).toBe(before + 1);
    const prepared = preparations.at(-1);
    expect(prepared?.app).toBe('prepared');
    expect(deploys.at(-1)?.preparation).toBe(prepared);
    expect(prepared?.disposed).toBe(1);
    // A fetch deploys nothing, so nothing is prepared for it.
    await exec('git', ['-C', work, 'fetch', '-q', `ssh://git@127.0.0.1:${receiver.port}/prepared.git`, 'main'], {
      env: { ...process.env, GIT_SSH_COMMAND: `ssh -i ${goodKey} -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -p ${receiver.port}` },
    });
    expect(preparations.length).toBe(before + 1);
  });

  it('rejects a push whose deploy fails, with the reason, and leaves the branch where it was', async () => {
    const work = await repo('b', { FAIL: 'missing dependency' });
    const { code, output } = await push(work, 'other', goodKey);
    expect(code).not.toBe(0);
    expect(output).toContain('build failed: missing dependency');
    expect(output).toMatch(/pre-receive hook declined/);
    const { stdout } = await exec('git', ['--git-dir', join(dir, 'repos', 'other.git'), 'for-each-ref']);
    expect(stdout.trim()).toBe('');
  });

  it('stores pushes to other branches without deploying them, and tells the pusher so', async () => {
    const before = deploys.length;
    const work = await repo('c', { 'a.txt': 'x' });
    const { code, output } = await push(work, 'myapp', goodKey, 'main:feature');
    expect(code).toBe(0);
    expect(deploys.length).toBe(before);
    expect(output).toContain('remote: flynn-ts: feature stored but not deployed: only pushes to main or master deploy');
    expect(output).not.toContain('-----> Building');
  });

  it('refuses keys that are not registered', async () => {
    const work = await repo('d', { 'a.txt': 'x' });
    const { code, output } = await push(work, 'myapp', badKey);
    expect(code).not.toBe(0);
    expect(output).toMatch(/Permission denied/);
  });

  it('refuses repositories of apps that do not exist', async () => {
    const work = await repo('e', { 'a.txt': 'x' });
    const { code, output } = await push(work, 'nope', goodKey);
    expect(code).not.toBe(0);
    expect(output).toContain('no such app: nope');
  });

  it('refuses any command other than git push and fetch', async () => {
    const ssh = ['-i', goodKey, '-o', 'IdentitiesOnly=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-p', String(receiver.port), 'git@127.0.0.1'];
    await expect(exec('ssh', [...ssh, 'cat /etc/passwd'])).rejects.toMatchObject({ stderr: expect.stringContaining('only git push and fetch') });
    await expect(exec('ssh', [...ssh, "git-receive-pack '../etc.git'"])).rejects.toMatchObject({ code: 1 });
  });

  it('serves clones of an app repository', async () => {
    const clone = join(dir, 'clone');
    const ssh = `ssh -i ${goodKey} -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR`;
    await exec('git', ['clone', '-q', `ssh://git@127.0.0.1:${receiver.port}/myapp.git`, clone], { env: { ...process.env, GIT_SSH_COMMAND: ssh } });
    const { stdout } = await exec('git', ['-C', clone, 'log', '--oneline']);
    expect(stdout).toContain('init');
  });

  it('deploys pushes to the same app one at a time, refusing one that was overtaken before deploying it', async () => {
    maxActivePerApp = 0;
    const before = deploys.length;
    const w1 = await repo('f1', { 'a.txt': '1' });
    const w2 = await repo('f2', { 'a.txt': '2' });
    // The first deploy holds until the second push has queued behind it (the receiver says so on
    // its trace channel), so the two really overlap however slow the machine.
    const queued = new Promise<void>((resolve) => {
      const onTrace = (message: unknown) => {
        if ((message as { phase: string }).phase !== 'push waiting') return;
        unsubscribe(GIT_TRACE_CHANNEL, onTrace);
        resolve();
      };
      subscribe(GIT_TRACE_CHANNEL, onTrace);
    });
    barrier = async () => {
      barrier = undefined;
      // Bounded, so that a push that never queues fails this test instead of hanging the next ones.
      await Promise.race([queued, new Promise((resolve) => setTimeout(resolve, 30_000))]);
    };
    const results = await Promise.all([push(w1, 'myapp', goodKey, '+main:main'), push(w2, 'myapp', goodKey, '+main:main')]);
    expect(maxActivePerApp).toBe(1);
    expect(results.map((r) => r.code).sort()).toEqual([0, 1]);
    const loser = results.find((r) => r.code !== 0);
    expect(loser?.output).toContain('Waiting for the previous push');
    expect(loser?.output).toContain('main moved while this push waited');
    expect(deploys.length).toBe(before + 1);
  });

  it('deploys pushes to different apps in parallel', async () => {
    maxActivePerApp = 0;
    // Each deploy waits until both have started; serialised deploys would time out the first.
    const arrived = new Set<string>();
    let bothArrived!: () => void;
    const both = new Promise<void>((resolve) => (bothArrived = resolve));
    barrier = async (app) => {
      arrived.add(app);
      if (arrived.size === 2) bothArrived();
      await Promise.race([both, new Promise((_, reject) => setTimeout(() => reject(new Error('deploys did not overlap')), 15_000))]);
    };
    const w1 = await repo('g1', { 'b.txt': 'parallel 1' });
    const w2 = await repo('g2', { 'b.txt': 'parallel 2' });
    const results = await Promise.all([push(w1, 'myapp', goodKey, '+main:main'), push(w2, 'other', goodKey, '+main:main')]);
    barrier = undefined;
    expect(results.map((r) => r.code), results.map((r) => r.output).join('\n')).toEqual([0, 0]);
    expect(maxActivePerApp).toBe(2);
  });

  it('tells a pusher whose build it cancels on close why, before the connection goes', async () => {
    // Two pushes in flight: one whose deploy fails on its own terms, one that fails with the abort's reason.
    let building = 0;
    let bothBuilding!: () => void;
    const started = new Promise<void>((resolve) => (bothBuilding = resolve));
    const closing = await startGitReceiver({
      host: '127.0.0.1',
      port: 0,
      hostKey: generatePrivateKey(),
      reposDir: join(dir, 'repos-closing'),
      platform: {
        authorize: async (key) => authorized.has(key.fingerprint),
        appExists: async () => true,
        deploy: async (p: Push) => {
          p.output('-----> Building');
          if (++building === 2) bothBuilding();
          await new Promise((resolve) => p.signal?.addEventListener('abort', resolve, { once: true }));
          if (p.app === 'same') throw p.signal?.reason as Error;
          throw new PushRejectedError('build failed at step "compile": the build was cancelled');
        },
      },
    });
    const pushing = push(await repo('closing', { 'server.js': '' }), 'closing', goodKey, 'main', closing.port);
    const pushingSame = push(await repo('same', { 'server.js': '' }), 'same', goodKey, 'main', closing.port);
    await started;
    await closing.close();
    const { code, output } = await pushing;
    expect(code).not.toBe(0);
    expect(output).toContain('remote:  !     build failed at step "compile": the build was cancelled');
    expect(output).toContain('remote:        the platform is shutting down: push again once it is back');
    const same = await pushingSame;
    expect(same.output, same.output).toContain('pre-receive hook declined');
    expect(same.output.match(/the platform is shutting down/g)).toHaveLength(1);
    expect(same.output).toContain('remote:  !     the platform is shutting down: push again once it is back');
  });

  it('keeps the same host key fingerprint it was given', () => {
    expect(receiver.fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });
});
