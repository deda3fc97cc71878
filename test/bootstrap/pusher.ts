/** A cluster with one SSH key, and `git push` of a fixture app (test/fixtures/apps) to an app of it. */
import { execFile } from 'node:child_process';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll } from 'vitest';
import type { TestCluster } from '../../src/bootstrap/index.js';
import { generatePrivateKey, publicKeyLine } from '../../src/git/index.js';

const exec = promisify(execFile);
const FIXTURES = join(import.meta.dirname, '../fixtures/apps');

export interface Pushed {
  code: number;
  output: string;
  /** The `remote:` lines, without that prefix and git's trailing padding. */
  remote: string[];
  ms: number;
}

export interface PushOptions {
  /** Meta of the app created for the push. */
  meta?: Record<string, string>;
  /** Push to an app the test made already (no app is created). */
  existing?: boolean;
}

/** Starts the cluster (`beforeAll`) and closes it (`afterAll`); `push` commits a fixture into a fresh repository and pushes it. */
export function pusher(start: () => Promise<TestCluster>) {
  const ctx = { cluster: undefined as unknown as TestCluster, dir: '', keyFile: '' };
  beforeAll(async () => {
    ctx.dir = await mkdtemp(join(tmpdir(), 'flynn-ts-push-'));
    ctx.cluster = await start();
    const key = generatePrivateKey();
    ctx.keyFile = join(ctx.dir, 'id_rsa');
    await writeFile(ctx.keyFile, key, { mode: 0o600 });
    await ctx.cluster.client.addKey(publicKeyLine(key));
  }, 120_000);
  afterAll(async () => {
    await ctx.cluster?.close();
    await rm(ctx.dir, { recursive: true, force: true });
  }, 60_000);

  const push = async (fixture: string, app: string, options: PushOptions = {}): Promise<Pushed> => {
    if (!options.existing) await ctx.cluster.client.createApp({ name: app, meta: options.meta ?? {} });
    const work = join(ctx.dir, app);
    await cp(join(FIXTURES, fixture), work, { recursive: true });
    const git = (...args: string[]) => exec('git', ['-C', work, '-c', 'user.email=t@t', '-c', 'user.name=t', ...args]);
    await exec('git', ['init', '-q', '-b', 'main', work]);
    await git('add', '-A');
    await git('commit', '--allow-empty', '-qm', fixture); // a second push of the same app pushes a new, unchanged commit
    const [host, port] = ctx.cluster.gitHost.split(':');
    const ssh = `ssh -i ${ctx.keyFile} -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -p ${port}`;
    const started = Date.now();
    let code = 0;
    let output: string;
    try {
      const r = await exec('git', ['-C', work, 'push', `ssh://git@${host}:${port}/${app}.git`, 'main'], { env: { ...process.env, GIT_SSH_COMMAND: ssh }, timeout: 120_000 });
      output = r.stdout + r.stderr;
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      code = e.code;
      output = e.stdout + e.stderr;
    }
    const remote = output.split('\n').filter((l) => l.startsWith('remote: ')).map((l) => l.slice('remote: '.length).trimEnd());
    return { code, output, remote, ms: Date.now() - started };
  };
  const logs = async (app: string, job?: string) => {
    const lines: string[] = [];
    for await (const l of ctx.cluster.client.logs(app, job ? { job } : {})) lines.push(l.msg);
    return lines;
  };
  return { ctx, push, logs };
}
