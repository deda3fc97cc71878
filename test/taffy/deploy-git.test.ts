/**
 * Taffy as a user meets it: `flynn create NAME --from-git URL` and `flynn deploy-git URL#REF`
 * deploy a repository served over smart HTTP (git http-backend on 127.0.0.20) or from file://,
 * through the same build → release → deploy as a push; a bad ref, an unreachable URL and a private
 * repository fail with one line while the current release keeps answering.
 */
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestCluster, serverAddArgs, type TestCluster } from '../../src/bootstrap/index.js';
import { planPlatform } from '../../src/bootstrap/platform.js';
import { ControllerClient } from '../../src/controller/index.js';
import { NotFoundError } from '../../src/errors/index.js';
import { checkGitSource, splitGitSource, TaffyErrorCodes } from '../../src/taffy/index.js';
import { getVia } from '../bootstrap/deploy-scenario.js';
import { startGitHttpServer, type GitHttpServer } from './git-server.js';
import { removeTestContainers } from '../host/support.js';
import { needDocker } from '../support/services.js';

const exec = promisify(execFile);
const MAIN = resolve('src/cli/main.ts');
const TSX = pathToFileURL(resolve('node_modules/tsx/dist/loader.mjs')).href;
const FIXTURE = resolve('test/fixtures/apps/node-hello');

const flynn = (args: string[], env: NodeJS.ProcessEnv) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((done) =>
    execFile(process.execPath, ['--import', TSX, MAIN, ...args], { env, encoding: 'utf8', timeout: 180_000 }, (err, stdout, stderr) =>
      done({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    ),
  );

describe('which git URLs and refs Taffy fetches', () => {
  const ok = (url: string, allowFile = false) => checkGitSource({ url }, { allowFile }).scheme;
  const refused = (url: string, allowFile = false, ref?: string) => {
    try {
      checkGitSource({ url, ...(ref === undefined ? {} : { ref }) }, { allowFile });
    } catch (err) {
      return (err as { code: string }).code;
    }
    return 'fetched';
  };

  it('takes https, http, git, ssh and scp-like URLs, and file:// only where allowed', () => {
    expect(ok('https://example.com/a.git')).toBe('https');
    expect(ok('http://127.0.0.1:9/a.git')).toBe('http');
    expect(ok('git://example.com/a.git')).toBe('git');
    expect(ok('ssh://git@example.com/a.git')).toBe('ssh');
    expect(ok('git@github.com:owner/repo.git')).toBe('ssh');
    expect(ok('file:///srv/a.git', true)).toBe('file');
    expect(refused('file:///srv/a.git')).toBe(TaffyErrorCodes.INVALID_SOURCE);
  });

  it('refuses transport helpers, plain paths, other schemes, option-like URLs and refs', () => {
    for (const url of ['ext::sh -c touch% /tmp/pwned', 'ext::sh', '/etc', '../repo', 'ftp://example.com/a.git', '--upload-pack=touch /tmp/x', 'fd::3', 'file://otherhost/srv/a.git', 'ssh://-oProxyCommand=touch%20x/a.git', 'ssh://-oProxyCommand=x@host/a.git', '-oProxyCommand=x@host:a.git']) {
      expect(refused(url, true), url).toBe(TaffyErrorCodes.INVALID_SOURCE);
    }
    for (const ref of ['--upload-pack=x', 'a..b', 'a b', 'HEAD@{1}', 'x.lock']) expect(refused('https://example.com/a.git', false, ref), ref).toBe(TaffyErrorCodes.INVALID_SOURCE);
    expect(checkGitSource({ url: 'https://bot:s3cret@example.com/a.git' }, { allowFile: false }).display).toBe('https://bot:***@example.com/a.git');
  });

  it('allows file:// by default only on a platform that listens on loopback', () => {
    expect(planPlatform({}).allowFileGitUrls).toBe(true);
    expect(planPlatform({ host: '127.0.0.9' }).allowFileGitUrls).toBe(true);
    expect(planPlatform({ host: '0.0.0.0' }).allowFileGitUrls).toBe(false);
    expect(planPlatform({ host: '10.1.2.3', allowFileGitUrls: true }).allowFileGitUrls).toBe(true);
  });

  it('splits URL#REF at the last #', () => {
    expect(splitGitSource('https://example.com/a.git#v2')).toEqual({ url: 'https://example.com/a.git', ref: 'v2' });
    expect(splitGitSource('https://example.com/a.git')).toEqual({ url: 'https://example.com/a.git' });
  });
});

describe('deploy from a git URL (Taffy) on a process cluster', () => {
  let cluster: TestCluster;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let server: GitHttpServer;
  let bare: string;
  let v1: string;
  const answer = async () => (await getVia(cluster.routerUrl, `hello.${cluster.domain}`)).body;
  const versions = async () => (await cluster.client.listReleases('hello')).length;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flynn-taffy-'));
    cluster = await createTestCluster();
    env = { ...process.env, FLYNNRC: join(dir, 'flynnrc.json'), HOME: dir };
    expect((await flynn(serverAddArgs(cluster, 'test'), env)).code).toBe(0);
    // A repository with v1 on main and a tag v2, served from <dir>/srv/hello.git.
    const work = join(dir, 'work');
    await cp(FIXTURE, work, { recursive: true });
    const server0 = await readFile(join(work, 'server.js'), 'utf8');
    const git = (...args: string[]) => exec('git', ['-C', work, '-c', 'user.email=t@t', '-c', 'user.name=t', ...args]);
    const version = async (v: string) => {
      await writeFile(join(work, 'server.js'), server0.replace('Hello from flynn-ts on port ${port}', `Hello ${v}`));
      await git('add', '-A');
      await git('commit', '-qm', v);
      return (await git('rev-parse', 'HEAD')).stdout.trim();
    };
    await exec('git', ['init', '-q', '-b', 'main', work]);
    v1 = await version('v1');
    await git('checkout', '-qb', 'next');
    await version('v2');
    await git('tag', 'v2');
    await git('checkout', '-q', 'main');
    bare = join(dir, 'srv', 'hello.git');
    await exec('git', ['clone', '-q', '--bare', work, bare]);
    server = await startGitHttpServer(join(dir, 'srv'), '127.0.0.20');
  }, 120_000);

  afterAll(async () => {
    await server?.close();
    await cluster?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it('flynn create NAME --from-git URL deploys the default branch over smart HTTP, streaming the build', async () => {
    const created = await flynn(['create', 'hello', '--from-git', `${server.url}/hello.git`], env);
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    expect(created.stdout).toContain(`-----> Fetching ${server.url}/hello.git`);
    expect(created.stdout).toContain(`-----> Deploying commit ${v1.slice(0, 12)}`);
    expect(created.stdout).toContain('-----> Releasing v1...');
    expect(created.stdout).toContain(`=====> hello deployed to ${cluster.appUrl('hello')}`);
    expect(await answer()).toBe('Hello v1\n');
  }, 180_000);

  it('deploys a tag from file:// through the typed client, as a new release', async () => {
    const lines: string[] = [];
    await cluster.client.deployGit('hello', { url: pathToFileURL(bare).href, ref: 'v2' }, { onOutput: (l) => lines.push(l) });
    expect(lines[0]).toBe(`-----> Fetching ${pathToFileURL(bare).href} at v2`);
    expect(lines).toContain('-----> Releasing v2...');
    expect(await answer()).toBe('Hello v2\n');
  }, 180_000);

  it('a missing ref, an unreachable URL and a private repository fail in one line; the current release keeps serving', async () => {
    const before = await versions();
    const cases: [string, RegExp][] = [
      [`${server.url}/hello.git#no-such-branch`, /^flynn: no branch, tag or commit "no-such-branch" in http:\/\/127\.0\.0\.20:\d+\/hello\.git\n$/],
      ['http://127.0.0.20:1/hello.git', /^flynn: cannot reach http:\/\/127\.0\.0\.20:1\/hello\.git: .*\n$/],
      [`${server.url}/private/hello.git`, /^flynn: http:\/\/127\.0\.0\.20:\d+\/private\/hello\.git asks for credentials \(a private repository\?\), and the cluster has none for it: use a URL it can read\n$/],
      [`${server.url}/nothing-here.git`, /^flynn: no git repository at http:\/\/127\.0\.0\.20:\d+\/nothing-here\.git\n$/],
      ['ext::sh -c touch% /tmp/x', /^flynn: "ext::sh -c touch% \/tmp\/x" is not a git URL|^flynn: a git URL has no spaces/],
    ];
    for (const [arg, said] of cases) {
      const res = await flynn(['deploy-git', '-a', 'hello', arg], env);
      expect(res.code, arg).toBe(1);
      expect(res.stderr, arg).toMatch(said);
    }
    expect(await versions()).toBe(before);
    expect(await answer()).toBe('Hello v2\n');
  }, 180_000);

  it('the API refuses a URL it does not fetch with a 400, and an unknown app with a 404, before any stream', async () => {
    for (const url of ['ftp://127.0.0.20/hello.git', '/etc', 'ext::sh -c id']) {
      await expect(cluster.client.deployGit('hello', { url })).rejects.toMatchObject({ code: TaffyErrorCodes.INVALID_SOURCE, status: 400 });
    }
    await expect(cluster.client.deployGit('hello', { url: `${server.url}/hello.git`, ref: '--upload-pack=id' })).rejects.toMatchObject({ code: TaffyErrorCodes.INVALID_SOURCE, detail: { field: 'ref' } });
    await expect(cluster.client.deployGit('nope', { url: `${server.url}/hello.git` })).rejects.toMatchObject({ code: 'FLYNN_ERR_CONTROLLER_APP_NOT_FOUND', status: 404 });
    const stranger = new ControllerClient({ url: cluster.controllerUrl, key: 'not-the-key', ...(cluster.controllerPin === null ? {} : { tls: { pin: cluster.controllerPin } }) });
    await expect(stranger.deployGit('hello', { url: `${server.url}/hello.git` })).rejects.toMatchObject({ status: 401 });
    await stranger.close();
  });

  it('an error after the stream began reaches the client as the server threw it (kind, code, status)', async () => {
    const err: unknown = await cluster.client.deployGit('hello', { url: `${server.url}/hello.git`, ref: 'no-such-branch' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err).toMatchObject({ code: TaffyErrorCodes.NO_SUCH_REF, status: 404, message: expect.stringMatching(/no branch, tag or commit "no-such-branch"/) });
  });

  it('deploys a commit by its id (shallow when served by id, else from the whole history)', async () => {
    const res = await flynn(['deploy-git', '-a', 'hello', `${server.url}/hello.git#${v1.slice(0, 10)}`], env);
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(await answer()).toBe('Hello v1\n');
  }, 180_000);
});

if (await needDocker('deploy from a git URL on Docker')) {
  describe('deploy from a git URL (Taffy) on a Docker cluster', () => {
    let cluster: TestCluster;
    let dir: string;
    let server: GitHttpServer;

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'flynn-taffy-docker-'));
      const work = join(dir, 'work');
      await cp(FIXTURE, work, { recursive: true });
      await exec('git', ['init', '-q', '-b', 'main', work]);
      await exec('git', ['-C', work, 'add', '-A']);
      await exec('git', ['-C', work, '-c', 'user.email=t@t', '-c', 'user.name=t', 'commit', '-qm', 'hello']);
      await exec('git', ['clone', '-q', '--bare', work, join(dir, 'srv', 'hello.git')]);
      server = await startGitHttpServer(join(dir, 'srv'), '127.0.0.21');
      cluster = await createTestCluster({ runtime: 'docker' });
    }, 180_000);

    afterAll(async () => {
      await server?.close();
      await cluster?.close();
      if (cluster) await removeTestContainers(cluster.runId);
      if (dir) await rm(dir, { recursive: true, force: true });
    }, 60_000);

    it('builds the fetched tree in a build container and serves it; a bad ref leaves it serving', async () => {
      await cluster.client.createApp({ name: 'hello' });
      const lines: string[] = [];
      await cluster.client.deployGit('hello', { url: `${server.url}/hello.git` }, { onOutput: (l) => lines.push(l) });
      expect(lines).toContain(`=====> hello deployed to ${cluster.appUrl('hello')}`);
      const answer = async () => (await getVia(cluster.routerUrl, `hello.${cluster.domain}`)).body;
      expect(await answer()).toMatch(/^Hello from flynn-ts on port \d+\n$/);
      await expect(cluster.client.deployGit('hello', { url: `${server.url}/hello.git`, ref: 'nope' })).rejects.toMatchObject({ code: TaffyErrorCodes.NO_SUCH_REF });
      expect(await answer()).toMatch(/^Hello from flynn-ts/);
      expect((await cluster.client.listReleases('hello')).length).toBe(1);
    }, 240_000);
  });
}
