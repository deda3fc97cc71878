import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootstrap, BootstrapErrorCodes } from '../../src/bootstrap/index.js';
import { ControllerClient } from '../../src/controller/index.js';
import { generatePrivateKey, publicKeyLine } from '../../src/git/index.js';
import { etcdEndpoints, needEtcd } from '../support/services.js';
import { getVia, until } from './deploy-scenario.js';
import { freePort } from '../../src/host/testing/jobs.js';
import { componentKey } from '../../src/common/http/key-auth.js';

const exec = promisify(execFile);
// `--import tsx` resolves from the cwd; point at the loader itself.
const TSX = pathToFileURL(resolve('node_modules/tsx/dist/loader.mjs')).href;
const HOST_MAIN = resolve('examples/host/main.ts');
const BOOTSTRAP_MAIN = resolve('examples/bootstrap/main.ts');
const FIXTURE = resolve('test/fixtures/apps/node-hello');

/** A child process whose stdout lines and stderr are kept, and whose exit can be awaited. */
interface Child {
  proc: ChildProcess;
  lines: string[];
  stderr: () => string;
  exited: Promise<number | null>;
}

function start(script: string, args: string[], env: Record<string, string> = {}): Child {
  const proc = spawn(process.execPath, ['--import', TSX, script, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let out = '';
  let err = '';
  proc.stdout?.setEncoding('utf8').on('data', (c: string) => {
    out += c;
    const parts = out.split('\n');
    out = parts.pop() ?? '';
    lines.push(...parts);
  });
  proc.stderr?.setEncoding('utf8').on('data', (c: string) => (err += c));
  const exited = new Promise<number | null>((res) => proc.once('exit', (code) => res(code)));
  return { proc, lines, stderr: () => err, exited };
}

/** Stop a child we started (by its pid) and wait for it; SIGKILL if it lingers. */
async function stop(child: Child | undefined, timeoutMs = 15_000): Promise<number | null | undefined> {
  if (!child || child.proc.exitCode !== null || child.proc.signalCode !== null) return child?.proc.exitCode;
  child.proc.kill('SIGTERM');
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), timeoutMs);
  const code = await child.exited;
  clearTimeout(timer);
  return code;
}

if (await needEtcd('bootstrap from a manifest onto separately started host agents')) {
  describe('bootstrap from a manifest onto a running layer 0 (etcd + host agent processes)', () => {
    const run = randomUUID().slice(0, 8);
    const prefix = `/flynn-ts-test/${run}`;
    const hostIds = [`boot-${run}-a`, `boot-${run}-b`];
    const key = `key-${randomUUID()}`;
    let dir: string;
    const hosts: Child[] = [];
    let boot: Child | undefined;

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'flynn-ts-bootstrap-'));
      for (const [i, addr] of ['127.0.0.6', '127.0.0.7'].entries()) {
        hosts.push(
          start(HOST_MAIN, ['--id', hostIds[i] as string, '--runtime', 'process', '--discovery', 'etcd', '--etcd-endpoints', etcdEndpoints.join(','), '--etcd-prefix', prefix, '--advertise-addr', addr, '--registration-ttl', '3000', '--log-level', 'warn'], { FLYNN_HOST_KEY: componentKey(key, 'host') }),
        );
      }
    });

    afterAll(async () => {
      await stop(boot);
      await Promise.all(hosts.map((h) => stop(h)));
      const etcd = new Etcd3({ hosts: etcdEndpoints });
      await etcd.delete().prefix(`${prefix}/`).catch(() => {});
      etcd.close();
      await rm(dir, { recursive: true, force: true });
    }, 60_000);

    it('starts layer 1 from a YAML manifest, and a git push deploys onto the two host agents started on their own', async () => {
      const manifestPath = join(dir, 'cluster.yaml');
      await writeFile(
        manifestPath,
        [
          '# layer 0 runs already: etcd + two host agents',
          'discovery:',
          '  backend: etcd',
          `  endpoints: [${etcdEndpoints.join(', ')}]`,
          `  prefix: ${prefix}`,
          'waitHosts: {min: 2, timeoutMs: 30000}',
          'key: ${TEST_CONTROLLER_KEY}',
          `dataDir: ${join(dir, 'data')}`,
          'domain: boot.test',
          'build: process',
          'controller: {port: 0}',
          'router: {port: 0}',
          'git: {port: 0}',
          // Artifacts keep the shelf's URL: a restarted layer 1 must serve them at the same one.
          `shelf: {port: ${await freePort('127.0.0.1')}}`,
          '',
        ].join('\n'),
      );
      boot = start(BOOTSTRAP_MAIN, [manifestPath, '--json'], { TEST_CONTROLLER_KEY: key });
      const b = boot;
      const readyLine = await until(
        'the bootstrap binary to print its ready line',
        async () => {
          if (b.proc.exitCode !== null) throw new Error(`bootstrap exited ${b.proc.exitCode}: ${b.stderr()}`);
          return b.lines.find((l) => l.startsWith('{"step":"ready"'));
        },
        60_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}\nstdout:\n${b.lines.join('\n')}\nstderr:\n${b.stderr()}`);
      });
      const ready = JSON.parse(readyLine) as { controllerUrl: string; controllerPin: string; routerUrl: string; gitHost: string; gitFingerprint: string; hostIds: string[] };
      const serverAdd = await until('the server-add line', async () => b.lines.map((l) => JSON.parse(l) as { step: string; message: string }).find((s) => s.step === 'server-add')?.message);
      const steps = b.lines.map((l) => JSON.parse(l) as { step: string; message?: string });
      expect(steps.map((s) => s.step)).toEqual(expect.arrayContaining(['discovery', 'wait-hosts', 'store', 'shelf', 'scheduler', 'router', 'git', 'controller', 'ready']));
      expect(steps.find((s) => s.step === 'discovery')?.message).toContain(`etcd at ${etcdEndpoints.join(',')} (prefix ${prefix}) ok`);
      expect(steps.filter((s) => s.step === 'wait-hosts').at(-1)?.message).toMatch(/^2\/2 hosts up/);
      expect([...ready.hostIds].sort()).toEqual(hostIds);
      expect(ready.controllerUrl).toMatch(/^https:/);
      expect(serverAdd).toBe(`flynn server-add -p ${ready.controllerPin} -f -g ${ready.gitHost} --git-fingerprint ${ready.gitFingerprint} default ${ready.controllerUrl} $CONTROLLER_KEY`);
      expect(ready.gitFingerprint).toMatch(/^SHA256:/);

      // The typed client with the key from the environment; then a real git push over SSH.
      const client = new ControllerClient({ url: ready.controllerUrl, key, tls: { pin: ready.controllerPin } });
      let webIds: string[] = [];
      try {
        const sshKey = generatePrivateKey();
        const keyFile = join(dir, 'id_rsa');
        await writeFile(keyFile, sshKey, { mode: 0o600 });
        await client.addKey(publicKeyLine(sshKey));
        await client.createApp({ name: 'boothello' });
        const work = join(dir, 'app');
        await cp(FIXTURE, work, { recursive: true });
        await exec('git', ['init', '-q', '-b', 'main', work]);
        await exec('git', ['-C', work, 'add', '-A']);
        await exec('git', ['-C', work, '-c', 'user.email=t@t', '-c', 'user.name=t', 'commit', '-qm', 'node-hello']);
        const [gitHost, gitPort] = ready.gitHost.split(':');
        const ssh = `ssh -i ${keyFile} -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -p ${gitPort}`;
        const pushed = await exec('git', ['-C', work, 'push', `ssh://git@${gitHost}:${gitPort}/boothello.git`, 'main'], { env: { ...process.env, GIT_SSH_COMMAND: ssh }, timeout: 120_000 });
        expect(pushed.stdout + pushed.stderr).toContain('=====> boothello deployed to http://boothello.boot.test:');

        const res = await getVia(ready.routerUrl, 'boothello.boot.test');
        expect(res.status).toBe(200);
        expect(res.body).toContain('Hello from flynn-ts');

        // Two web jobs: one on each separately started host.
        await client.scale('boothello', { web: 2 });
        const web = await until('2 web jobs up', async () => {
          const jobs = (await client.listJobs('boothello')).filter((j) => j.type === 'web' && j.state === 'up');
          return jobs.length === 2 ? jobs : undefined;
        });
        expect(web.map((j) => j.hostId).sort()).toEqual(hostIds);
        webIds = web.map((j) => j.id).sort();
      } finally {
        await client.close();
      }

      // SIGTERM closes layer 1 cleanly; the host agents keep running.
      expect(await stop(boot)).toBe(0);
      expect(hosts.every((h) => h.proc.exitCode === null)).toBe(true);
      // Bootstrapped again from the same manifest (etcd store, same data dir and shelf port), layer 1
      // picks the app up: the new router answers without a push, with 2 web jobs, one on each host.
      boot = start(BOOTSTRAP_MAIN, [manifestPath, '--json'], { TEST_CONTROLLER_KEY: key });
      const again = boot;
      const readyAgain = JSON.parse(await until('the second ready line', async () => again.lines.find((l) => l.startsWith('{"step":"ready"')), 60_000)) as { controllerUrl: string; controllerPin: string; routerUrl: string; gitFingerprint: string };
      // The certificate is kept in the data dir: the same pin after a restart.
      expect(readyAgain.controllerPin).toBe(ready.controllerPin);
      expect(readyAgain.gitFingerprint).toBe(ready.gitFingerprint);
      expect(again.lines.some((l) => l.includes('"step":"store"') && l.includes('1 app(s)'))).toBe(true);
      const res = await until('the app through the new router', async () => {
        const r = await getVia(readyAgain.routerUrl, 'boothello.boot.test');
        if (r.status !== 200) throw new Error(`${r.status} ${r.body}`);
        return r;
      }).catch(async (err: Error) => {
        const c = new ControllerClient({ url: readyAgain.controllerUrl, key, tls: { pin: readyAgain.controllerPin } });
        const jobs = await c.listJobs('boothello').catch((e: Error) => e.message);
        await c.close();
        throw new Error(`${err.message}; jobs: ${JSON.stringify(jobs)}\n${again.lines.join('\n')}\n${again.stderr()}`);
      });
      expect(res.body).toContain('Hello from flynn-ts');
      const client2 = new ControllerClient({ url: readyAgain.controllerUrl, key, tls: { pin: readyAgain.controllerPin } });
      try {
        const jobs = await until('2 web jobs up after the restart', async () => {
          const up = (await client2.listJobs('boothello')).filter((j) => j.type === 'web' && j.state === 'up');
          return up.length === 2 ? up : undefined;
        });
        expect(jobs.map((j) => j.hostId).sort()).toEqual(hostIds);
        // The restarted platform adopts the running jobs: same jobs, nothing restarted.
        expect(jobs.map((j) => j.id).sort()).toEqual(webIds);
      } finally {
        await client2.close();
      }
      expect(await stop(boot)).toBe(0);
    }, 150_000);

    // A wait that ignored waitHosts.timeoutMs would hang past the test's timeout.
    it('times out naming how many host agents it saw when fewer than waitHosts.min registered', async () => {
      const steps: string[] = [];
      const err = await bootstrap(
        {
          discovery: { backend: 'etcd', endpoints: etcdEndpoints, prefix },
          waitHosts: { min: 5, timeoutMs: 2000 },
          build: 'process',
          controller: { port: 0, store: { backend: 'memory' } },
          router: { port: 0 },
          git: { port: 0 },
          shelf: { port: 0 },
        },
        { onStep: (s) => steps.push(`${s.step}: ${s.message}`) },
      ).catch((e: unknown) => e as Error);
      expect(err).toMatchObject({ code: BootstrapErrorCodes.NOT_READY, detail: { seen: 2, min: 5 } });
      expect((err as Error).message).toMatch(/^wait-hosts: only 2\/5 host agents registered as flynn-host within 2000 ms: /);
      for (const id of hostIds) expect((err as Error).message).toContain(id);
      expect(steps.at(-1)).toMatch(/^wait-hosts: 2\/5 hosts up/);
    }, 30_000);

    it('the binary fails fast with a clear message when etcd does not answer', async () => {
      const manifestPath = join(dir, 'unreachable.json');
      await writeFile(manifestPath, JSON.stringify({ discovery: { backend: 'etcd', endpoints: ['http://127.0.0.1:1'], timeoutMs: 3000 }, dataDir: join(dir, 'x') }));
      const child = start(BOOTSTRAP_MAIN, [manifestPath]);
      const code = await child.exited;
      expect(code).toBe(1);
      expect(child.stderr()).toMatch(/^bootstrap: discovery: etcd at http:\/\/127\.0\.0\.1:1 \(prefix \/flynn-ts\) (does not answer|did not answer within 3000 ms).*is it running, and are discovery\.endpoints right\? \(FLYNN_ERR_BOOTSTRAP_DISCOVERY_UNAVAILABLE\)/s);
    }, 30_000);

    it('the binary refuses a bad manifest with exit code 2 and the field path', async () => {
      const manifestPath = join(dir, 'bad.yaml');
      await writeFile(manifestPath, 'discovery: {backend: etcd, endpoints: [http://127.0.0.1:2379]}\ncontroller: {port: x}\n');
      const child = start(BOOTSTRAP_MAIN, [manifestPath]);
      expect(await child.exited).toBe(2);
      expect(child.stderr()).toContain(`bootstrap: invalid bootstrap manifest ${manifestPath}: controller.port must be 0-65535, got "x"`);
    }, 30_000);
  });
}
