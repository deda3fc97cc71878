/**
 * `npm start` (examples/cluster/main.ts) as a real process on a data dir: SIGKILLed (and, on Docker,
 * stopped with SIGTERM) and started again on the same data dir, it has every app, release, env,
 * key, route and formation back, with the same cluster key, git host key and cluster id, and the
 * app answers through the router again. On Docker the container keeps running meanwhile and is
 * adopted (same job, same container id).
 */
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { afterAll, describe, expect, it } from 'vitest';
import { pinOf } from '../../src/common/tls/self-signed.js';
import { ControllerClient } from '../../src/controller/client.js';
import { KEY_ED25519 } from '../../src/controller/testing/index.js';
import { generatePrivateKey, publicKeyLine } from '../../src/git/keys.js';
import { fixedPort, serving, startNpmStart as start, type Running, stopWhatOutlives } from '../support/npm-start.js';
import { needDocker } from '../support/services.js';

const exec = promisify(execFile);

/** Answers `<job id> <FOO>` on $PORT. */
const WEB = ['node', '-e', `require('http').createServer((q, s) => s.end(process.env.FLYNN_JOB_ID + ' ' + process.env.FOO)).listen(Number(process.env.PORT))`];

/** Everything the controller knows about `app` that a restart must keep. */
async function snapshot(c: ControllerClient, app: string) {
  const a = await c.getApp(app);
  return {
    app: a,
    releases: await c.listReleases(app),
    formations: await c.listFormations(app),
    routes: await c.listRoutes(app),
    keys: await c.listKeys(),
  };
}

function describeRestart(runtime: 'process' | 'docker', host: string) {
  describe(`npm start on the ${runtime} runtime, killed and started again on its data dir`, () => {
    let dataDir = '';
    const running: Running[] = [];
    afterAll(async () => {
      for (const r of running) if (r.proc.exitCode === null) r.proc.kill('SIGKILL');
      if (dataDir) await stopWhatOutlives(dataDir);
      if (dataDir) for (const f of [dataDir, `${dataDir}-id_rsa`, `${dataDir}-known_hosts`]) await rm(f, { recursive: true, force: true });
    }, 60_000);

    it('brings back apps, releases, env, keys, routes and formations, and serves again within seconds', async () => {
      dataDir = await mkdtemp(join(tmpdir(), `flynn-ts-restart-${runtime}-`));
      const ports = { controller: await fixedPort(host), router: await fixedPort(host), git: await fixedPort(host), shelf: await fixedPort(host) };
      const args = ['--runtime', runtime, '--host', host, '--data-dir', dataDir, '--controller-port', String(ports.controller), '--router-port', String(ports.router), '--git-port', String(ports.git), '--shelf-port', String(ports.shelf)];
      const controllerUrl = `https://${host}:${ports.controller}`;
      const routerUrl = `http://${host}:${ports.router}`;

      const first = await start(args);
      running.push(first);
      const key = (await readFile(join(dataDir, 'controller-key'), 'utf8')).trim();
      expect(first.stdout()).toContain(key);
      // The controller's certificate is kept in the data dir: its pin is the banner's, before and after the restart.
      const pin = pinOf(await readFile(join(dataDir, 'controller-tls.crt'), 'utf8'));
      expect(first.stdout()).toContain(`-p ${pin}`);
      const client = new ControllerClient({ url: controllerUrl, key, tls: { pin } });
      const app = 'restart';
      await client.createApp({ name: app });
      const v1 = await client.createRelease(app, { env: { FOO: 'one' }, processes: { web: { cmd: WEB } } });
      await client.waitForDeployment(app, (await client.deploy(app, v1.id)).id, { timeoutMs: 60_000 });
      await client.scale(app, { web: 1 });
      const change = await client.setEnv(app, { FOO: 'two' });
      if (change.deployment) await client.waitForDeployment(app, change.deployment.id, { timeoutMs: 60_000 });
      await client.createRoute(app, { type: 'http', domain: `${app}.flynn.local`, service: `${app}-web` });
      await client.createRoute(app, { type: 'http', domain: 'www.restart.test', service: `${app}-web` });
      await client.addKey(KEY_ED25519);
      // A user key to push with, and the git host key pinned as `flynn server-add` pins it.
      const userKey = join(dataDir, '..', `${basename(dataDir)}-id_rsa`);
      const pinned = join(dataDir, '..', `${basename(dataDir)}-known_hosts`);
      await writeFile(userKey, generatePrivateKey(), { mode: 0o600 });
      await client.addKey(publicKeyLine(await readFile(userKey, 'utf8')));
      await writeFile(pinned, `[${host}]:${ports.git} ${publicKeyLine(await readFile(join(dataDir, 'ssh_host_rsa_key'), 'utf8'))}\n`);
      const before = await snapshot(client, app);
      const served = (await serving(routerUrl, `${app}.flynn.local`)).body;
      expect(served).toMatch(/ two$/);
      const jobsBefore = (await client.listJobs(app)).filter((j) => j.state === 'up').map((j) => j.id);
      expect(jobsBefore).toHaveLength(1);
      const clusterId = await readFile(join(dataDir, 'cluster-id'), 'utf8');
      const docker = new Docker();
      const containerOf = async (jobId: string) => (await docker.listContainers({ filters: { label: [`io.flynn-ts.job=${jobId}`] } }))[0]?.Id;
      const containerBefore = runtime === 'docker' ? await containerOf(jobsBefore[0] ?? '') : undefined;
      if (runtime === 'docker') expect(containerBefore).toBeDefined();

      // SIGKILL: nothing gets to clean up or flush.
      first.proc.kill('SIGKILL');
      await first.exited;
      const restartAt = Date.now();
      const second = await start(args);
      running.push(second);
      const bannerAt = Date.now();
      const up = await serving(routerUrl, `${app}.flynn.local`);
      console.log(`[measured] ${runtime}: npm start after SIGKILL → banner ${bannerAt - restartAt} ms, app answering through the router ${up.at - restartAt} ms`);
      expect(up.body).toMatch(/ two$/);
      expect(second.fingerprint).toBe(first.fingerprint);
      expect(await readFile(join(dataDir, 'cluster-id'), 'utf8')).toBe(clusterId);
      expect(await readFile(join(dataDir, 'controller-key'), 'utf8')).toBe(`${key}\n`);
      expect(pinOf(await readFile(join(dataDir, 'controller-tls.crt'), 'utf8'))).toBe(pin);
      const after = new ControllerClient({ url: controllerUrl, key, tls: { pin } });
      expect(await snapshot(after, app)).toEqual(before);
      expect((await serving(routerUrl, 'www.restart.test')).body).toMatch(/ two$/);
      if (runtime === 'docker') {
        // Adopted, not restarted: the same job answers, from the same container.
        expect(up.body).toBe(served);
        expect(await containerOf(jobsBefore[0] ?? '')).toBe(containerBefore);
      }

      if (runtime === 'docker') {
        // Ctrl-C (SIGTERM) stops the platform only: the container keeps running and is adopted again.
        second.proc.kill('SIGTERM');
        expect(await second.exited, second.stdout() + second.stderr()).toBe(0);
        expect(await containerOf(jobsBefore[0] ?? '')).toBe(containerBefore);
        const third = await start([...args, '--stop-apps-on-exit']);
        running.push(third);
        expect((await serving(routerUrl, `${app}.flynn.local`)).body).toBe(served);
        // With --stop-apps-on-exit, Ctrl-C stops the apps too.
        third.proc.kill('SIGTERM');
        expect(await third.exited, third.stdout() + third.stderr()).toBe(0);
        expect(await containerOf(jobsBefore[0] ?? '')).toBeUndefined();
      } else {
        // A push after the restart, with the host key pinned before it (strict checking).
        const work = join(dataDir, '..', `${basename(dataDir)}-app`);
        await cp(resolve('test/fixtures/apps/node-hello'), work, { recursive: true });
        await exec('git', ['init', '-q', '-b', 'main', work]);
        await exec('git', ['-C', work, 'add', '-A']);
        await exec('git', ['-C', work, '-c', 'user.email=t@t', '-c', 'user.name=t', 'commit', '-qm', 'hello']);
        const ssh = `ssh -i ${userKey} -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=${pinned} -o LogLevel=ERROR -p ${ports.git}`;
        const pushed = await exec('git', ['-C', work, 'push', `ssh://git@${host}:${ports.git}/${app}.git`, 'main'], { env: { ...process.env, GIT_SSH_COMMAND: ssh }, timeout: 120_000 });
        expect(pushed.stdout + pushed.stderr).toContain(`=====> ${app} deployed`);
        expect((await serving(routerUrl, `${app}.flynn.local`)).body).toContain('Hello from flynn-ts');
        await rm(work, { recursive: true, force: true });
        second.proc.kill('SIGTERM');
        expect(await second.exited, second.stdout() + second.stderr()).toBe(0);
      }
      await client.close();
      await after.close();
    }, 240_000);
  });
}

describeRestart('process', '127.0.0.41');
if (await needDocker('npm start restart on Docker')) describeRestart('docker', '127.0.0.42');
