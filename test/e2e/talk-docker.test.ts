/**
 * The talk's demo end to end, with real everything: three host agent processes on 127.0.0.2–4
 * (Docker runtime, etcd discovery), the platform on the same etcd prefix, the real `flynn` CLI
 * process with its own HOME/FLYNNRC, and the real `git` client over SSH with a key made here.
 */
import { spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BootstrapHandle } from '../../src/bootstrap/index.js';
import { knownHostsPath } from '../../src/cli/ssh-pin.js';
import { fingerprintOfKey, generatePrivateKey, publicKeyLine } from '../../src/git/index.js';
import { removeTestContainers } from '../host/support.js';
import { needDocker, needEtcd } from '../support/services.js';
import {
  answeringJob,
  deleteEtcdPrefix,
  flynn,
  getOrZero,
  getVia,
  Journal,
  newRun,
  pollRouter,
  removeHostContainers,
  runProc,
  spawnHostAgent,
  startPlatformForTest,
  startSshAgent,
  stopChild,
  until,
  type HostProc,
  type Result,
} from './support.js';

const APP = 'node-demo';
const DOMAIN = 'demo.example.com';
const FIXTURE = join(import.meta.dirname, '../fixtures/apps/node-hello');
const services = (await needEtcd('the talk end to end (etcd)')) && (await needDocker('the talk end to end (Docker)'));

describe.runIf(services)('the talk end to end: 3 host agent processes, Docker, etcd, the flynn CLI and git over SSH', () => {
  const r = newRun();
  let dir: string;
  let work: string;
  let env: NodeJS.ProcessEnv;
  let platform: BootstrapHandle | undefined;
  let platformStarting: Promise<BootstrapHandle> | undefined;
  const hosts: HostProc[] = [];
  let agent: Awaited<ReturnType<typeof startSshAgent>> | undefined;
  const journal = new Journal();
  const appHost = () => `${APP}.${platform!.domain}`;

  const cli = async (...args: string[]): Promise<Result> => {
    const res = await flynn(args, { cwd: work, env });
    if (res.code !== 0) throw new Error(`flynn ${args.join(' ')} exited ${res.code}: ${res.stderr.trim()}`);
    return res;
  };
  const git = (args: string[], extraEnv: NodeJS.ProcessEnv = {}) => runProc('git', args, { cwd: work, env: { ...env, ...extraEnv }, timeoutMs: 120_000 });
  const commit = async (message: string) => {
    expect((await git(['add', '-A'])).code).toBe(0);
    expect((await git(['commit', '-qm', message])).code).toBe(0);
  };
  /** `git push flynn main`, recording when each `remote:` line arrived. */
  const push = (extraEnv: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; output: string; lines: { at: number; line: string }[] }> =>
    new Promise((done) => {
      const child = spawn('git', ['push', 'flynn', 'main'], { cwd: work, env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      const lines: { at: number; line: string }[] = [];
      const take = (chunk: Buffer) => {
        const text = chunk.toString('utf8');
        output += text;
        for (const line of text.split(/[\r\n]/)) if (line.startsWith('remote:')) lines.push({ at: Date.now(), line });
      };
      child.stdout.on('data', take);
      child.stderr.on('data', take);
      child.on('close', (code) => done({ code, output, lines }));
    });
  const webJobs = async () => (await platform!.client.listJobs(APP)).filter((j) => j.type === 'web' && j.state === 'up');

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flynn-ts-talk-'));
    const home = join(dir, 'home');
    await mkdir(join(home, '.ssh'), { recursive: true });
    // A clean user: its own HOME and flynnrc, no ssh command or agent inherited from the runner.
    env = { ...process.env, HOME: home, FLYNNRC: join(home, '.flynnrc'), GIT_AUTHOR_NAME: 'e2e', GIT_AUTHOR_EMAIL: 'e2e@flynn-ts', GIT_COMMITTER_NAME: 'e2e', GIT_COMMITTER_EMAIL: 'e2e@flynn-ts', GIT_CONFIG_NOSYSTEM: '1' };
    delete env.GIT_SSH_COMMAND;
    delete env.GIT_SSH;
    delete env.SSH_AUTH_SOCK;
    for (const [i, ip] of ['127.0.0.2', '127.0.0.3', '127.0.0.4'].entries()) {
      const host = spawnHostAgent(r, `host${i + 1}`, ip);
      hosts.push(host);
      journal.follow(host.id, host.proc.stderr!);
    }
    const exited = Promise.race(hosts.map((h) => new Promise<never>((_, ko) => h.proc.once('exit', (code) => ko(new Error(`host agent ${h.id} exited with ${code} while starting:\n${journal}`))))));
    exited.catch(() => {});
    platformStarting = startPlatformForTest(r, journal.logger('platform'));
    platform = await Promise.race([platformStarting, exited]);
    await Promise.race([until('the scheduler to know the 3 host agents, ready', async () => (platform!.scheduler.view().hosts.filter((h) => h.ready).length === 3 ? true : undefined), 30_000), exited]);

    const key = generatePrivateKey();
    await writeFile(join(home, '.ssh', 'id_rsa'), key, { mode: 0o600 });
    await writeFile(join(home, '.ssh', 'id_rsa.pub'), `${publicKeyLine(key, 'e2e')}\n`);
    agent = await startSshAgent(dir, join(home, '.ssh', 'id_rsa'));
    env.SSH_AUTH_SOCK = agent.sock;

    work = join(dir, APP);
    await cp(FIXTURE, work, { recursive: true });
    // Say which job answers, so that answers from different jobs can be told apart.
    const server = await readFile(join(work, 'server.js'), 'utf8');
    await writeFile(join(work, 'server.js'), server.replace('Hello from flynn-ts on port ${port}', 'Hello from flynn-ts on port ${port} job ${process.env.FLYNN_JOB_ID}'));
    expect((await git(['init', '-q', '-b', 'main'])).code).toBe(0);
    await commit(APP);
  }, 90_000);

  afterAll(async () => {
    const errors: unknown[] = [];
    const step = async (f: () => Promise<unknown>) => {
      try {
        await f();
      } catch (err) {
        errors.push(err);
      }
    };
    // Started even when a host agent failed first: wait for it, then close it.
    await step(async () => (await platformStarting?.catch(() => undefined))?.close());
    await step(() => Promise.all(hosts.map((h) => stopChild(h.proc))));
    await step(async () => agent?.close());
    await step(() => removeTestContainers(r.run));
    await step(() => deleteEtcdPrefix(r));
    if (dir) await step(() => rm(dir, { recursive: true, force: true }));
    if (errors.length > 0) throw new AggregateError(errors, 'e2e cleanup failed');
  }, 60_000);

  it('server-add pins the git host key (a wrong fingerprint adds nothing), key-add adds ~/.ssh/id_rsa.pub, create adds the flynn remote', async () => {
    const p = platform!;
    const wrong = await flynn(['server-add', '-p', p.controllerPin!, '-g', p.gitHost, '--git-fingerprint', `SHA256:${'A'.repeat(43)}`, 'e2e', p.controllerUrl, p.key], { cwd: work, env });
    // A wrong certificate pin: refused with one line, nothing added.
    const wrongPin = await flynn(['server-add', '-p', 'A'.repeat(43) + '=', 'e2e', p.controllerUrl, p.key], { cwd: work, env });
    expect(wrongPin.code).toBe(1);
    expect(wrongPin.stderr.trim().split('\n')).toHaveLength(1);
    expect(wrongPin.stderr).toContain(`TLS pin mismatch: the server's certificate is ${p.controllerPin}`);
    // A plain http:// URL to the HTTPS controller says what to do.
    const plain = await flynn(['server-add', 'e2e', p.controllerUrl.replace('https:', 'http:'), p.key], { cwd: work, env });
    expect(plain.code).toBe(1);
    expect(plain.stderr).toContain(`this controller speaks HTTPS only: use ${p.controllerUrl}`);
    expect(plain.stderr).toContain(`-p ${p.controllerPin}`);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain(`is ${p.gitFingerprint}, not the given`);
    const added = await cli('server-add', '-p', p.controllerPin!, '-g', p.gitHost, '--git-fingerprint', p.gitFingerprint, 'e2e', p.controllerUrl, p.key);
    expect(added.stdout).toContain(`Git host ${p.gitHost} pinned to ${p.gitFingerprint}`);
    const pub = await readFile(join(env.HOME!, '.ssh', 'id_rsa.pub'), 'utf8');
    expect((await cli('key-add')).stdout.trim()).toBe(`Key ${fingerprintOfKey(pub)} added.`);
    const created = await cli('create', APP);
    expect(created.stdout).toContain(`Created ${APP}`);
    expect((await git(['remote', 'get-url', 'flynn'])).stdout.trim()).toBe(`ssh://git@${p.gitHost}/${APP}.git`);
  });

  it('git push flynn main streams the build as remote: lines and deploys; the router answers at <app>.<domain>', async () => {
    const pushed = await push();
    expect(pushed.output).toContain(`=====> ${APP} deployed to ${platform!.appUrl(APP)}`);
    expect(pushed.code).toBe(0);
    // Streamed live: the build's first lines reached the pusher before the deploy finished.
    const firstBuild = pushed.lines.find((l) => l.line.includes('----->'));
    const deployed = pushed.lines.find((l) => l.line.includes('deployed to http://'));
    expect(firstBuild).toBeDefined();
    expect(firstBuild!.at).toBeLessThan(deployed!.at);
    const res = await getVia(platform!.routerUrl, appHost());
    expect(res.status).toBe(200);
    expect(res.body).toContain('Hello from flynn-ts');
  }, 120_000);

  it('route-add-http adds a domain that routes lists and the router serves', async () => {
    const id = (await cli('route-add-http', DOMAIN)).stdout.trim();
    expect(id).toMatch(/^http\//);
    const routes = (await cli('routes')).stdout;
    expect(routes).toMatch(new RegExp(`^http:${DOMAIN.replace(/\./g, '\\.')}\\s+${APP}-web\\s+${id}$`, 'm'));
    const res = await until('the new domain to answer', async () => {
      const got = await getOrZero(platform!.routerUrl, DOMAIN);
      return got.status === 200 ? got : undefined;
    }, 10_000);
    expect(res.body).toContain('Hello from flynn-ts');
  });

  it('scale web=3 runs 3 jobs on 3 different hosts that all answer through the router, and ps lists them', async () => {
    expect((await cli('scale', 'web=3')).stdout.trim()).toMatch(new RegExp(`^scaled ${APP}: web=3 \\(up in \\d+\\.\\d s\\)$`));
    const up = await until('3 web jobs up', async () => {
      const jobs = await webJobs();
      return jobs.length === 3 ? jobs : undefined;
    }, 30_000);
    expect(new Set(up.map((j) => j.hostId)).size).toBe(3);
    expect(new Set(up.map((j) => j.hostId))).toEqual(new Set(hosts.map((h) => h.id)));
    const seen = new Set<string>();
    await until('answers from 3 jobs', async () => {
      const res = await getVia(platform!.routerUrl, appHost());
      const job = answeringJob(res.body);
      if (res.status === 200 && job) seen.add(job);
      return seen.size >= 3 ? true : undefined;
    }, 15_000);
    expect([...seen].sort()).toEqual(up.map((j) => j.id).sort());
    const ps = (await cli('ps')).stdout.trim().split('\n');
    expect(ps[0]).toMatch(/^ID\s+TYPE\s+STATE\s+RELEASE\s+STARTED$/);
    expect(ps.filter((l) => /\sweb\s+up\s+v\d+\s/.test(l))).toHaveLength(3);
  }, 60_000);

  it('log shows the app output and run echo hi prints hi', async () => {
    const log = await until('the web log lines', async () => {
      const out = (await cli('log', '-t', 'web')).stdout;
      return (out.match(/node-hello listening/g) ?? []).length >= 3 ? out : undefined;
    }, 15_000);
    expect(log).toMatch(/web\.[0-9a-f-]{8}: node-hello listening/);
    // Jobs run unprivileged: uid 1000 (app) in their container.
    expect((await cli('run', 'id', '-u')).stdout.trim()).toBe('1000');
    const run = await cli('run', 'echo', 'hi');
    expect(run.stdout).toBe('hi\n');
  }, 60_000);

  it('route-remove takes the domain away: it answers 404', async () => {
    const route = (await platform!.client.listRoutes(APP)).find((x) => x.type === 'http' && x.domain === DOMAIN);
    expect(route).toBeDefined();
    expect((await cli('route-remove', route!.id)).stdout.trim()).toBe(`Route ${route!.id} removed.`);
    expect((await cli('routes')).stdout).not.toContain(DOMAIN);
    await until('the removed domain to answer 404', async () => ((await getOrZero(platform!.routerUrl, DOMAIN)).status === 404 ? true : undefined), 10_000);
    expect((await getVia(platform!.routerUrl, appHost())).status).toBe(200);
  });

  it('refuses a push with a key the controller does not know', async () => {
    const other = join(dir, 'id_other');
    await writeFile(other, generatePrivateKey(), { mode: 0o600 });
    // Still the pinned host key (strict checking): only the client key differs.
    const ssh = `ssh -i ${other} -o IdentitiesOnly=yes -o UserKnownHostsFile=${knownHostsPath(env)} -o StrictHostKeyChecking=yes`;
    const pushed = await push({ GIT_SSH_COMMAND: ssh, SSH_AUTH_SOCK: '' });
    expect(pushed.code).not.toBe(0);
    expect(pushed.output).toContain('Permission denied');
  }, 60_000);

  it('rejects a push whose build fails while the old release answers every request', async () => {
    const pkg = JSON.parse(await readFile(join(work, 'package.json'), 'utf8')) as Record<string, unknown>;
    pkg.scripts = { 'heroku-postbuild': 'echo broken on purpose && exit 3' };
    await writeFile(join(work, 'package.json'), JSON.stringify(pkg, null, 2));
    await commit('break the build');
    const before = (await platform!.client.getApp(APP)).releaseId;
    const started = new Date().toISOString().slice(11, 23);
    const poll = pollRouter(platform!.routerUrl, appHost());
    const pushed = await push();
    const { ok, failed } = await poll.stop();
    expect(pushed.code).not.toBe(0);
    expect(pushed.output).toContain('broken on purpose');
    expect(pushed.output).toMatch(/build failed/i);
    expect((await platform!.client.getApp(APP)).releaseId).toBe(before);
    expect(failed, `${failed.length} of ${failed.length + ok} requests failed during the push started at ${started}; the cluster said:\n${journal}`).toEqual([]);
    expect(ok).toBeGreaterThan(10);
  }, 120_000);

  it('SIGKILL of a host agent (and its containers): the scheduler replaces its job and the app answers again from 3 jobs', async () => {
    const victim = hosts[1]!;
    const before = await webJobs();
    expect(before.filter((j) => j.hostId === victim.id)).toHaveLength(1);
    const t0 = Date.now();
    victim.proc.kill('SIGKILL');
    // A dead machine takes its containers with it.
    expect(await removeHostContainers(r, victim.id)).toBeGreaterThan(0);
    const recovered = await until('3 web jobs up on the 2 live hosts, all answering through the router', async () => {
      const jobs = await webJobs();
      if (jobs.length !== 3 || jobs.some((j) => j.hostId === victim.id)) return undefined;
      const ids = new Set(jobs.map((j) => j.id));
      const seen = new Set<string>();
      for (let i = 0; i < 30 && seen.size < 3; i++) {
        const res = await getOrZero(platform!.routerUrl, appHost());
        const job = answeringJob(res.body);
        if (res.status !== 200 || !job || !ids.has(job)) return undefined;
        seen.add(job);
      }
      return seen.size === 3 ? jobs : undefined;
    }, 40_000);
    const recoveryMs = Date.now() - t0;
    console.log(`[e2e] host ${victim.id} SIGKILLed: 3 web jobs up and answering again after ${recoveryMs} ms`);
    expect(victim.alive()).toBe(false);
    expect(new Set(recovered.map((j) => j.hostId))).toEqual(new Set([hosts[0]!.id, hosts[2]!.id]));
    // After recovery, every request succeeds.
    const results = await Promise.all(Array.from({ length: 60 }, () => getOrZero(platform!.routerUrl, appHost())));
    expect(results.filter((x) => x.status !== 200), `the cluster said:\n${journal}`).toEqual([]);
  }, 60_000);
});
