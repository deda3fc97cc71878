/**
 * Whole-cluster recovery on the multi-machine shape: a private etcd (discovery and the controller's
 * store), three Docker host agents (examples/host/main.ts, each with its --id and data dir) and the
 * platform (examples/platform/main.ts, with its detached router), each process supervised as
 * systemd's Restart=always would (started again shortly after it exits). Everything is SIGKILLed
 * and started again in different orders; each time every app is back to its formation with no
 * duplicate job, apps, releases, env, routes and keys are all there, and the apps answer through
 * the router. A host agent killed alone and started again with the same --id adopts its containers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import Docker from 'dockerode';
import { afterAll, describe, expect, it } from 'vitest';
import { findRouter, stopRouterProcess } from '../../src/bootstrap/router-process.js';
import { componentKey } from '../../src/common/http/key-auth.js';
import { pinOf } from '../../src/common/tls/self-signed.js';
import { ControllerClient } from '../../src/controller/client.js';
import { KEY_ED25519 } from '../../src/controller/testing/index.js';
import { startEtcdServer, type EtcdServer } from '../../src/discovery/testing/etcd-server.js';
import { fixedPort, serving } from '../support/npm-start.js';
import { needDocker } from '../support/services.js';
import { until } from './deploy-scenario.js';

const TSX = pathToFileURL(resolve('node_modules/tsx/dist/loader.mjs')).href;
const HOST_MAIN = resolve('examples/host/main.ts');
const PLATFORM_MAIN = resolve('examples/platform/main.ts');
const PLATFORM_HOST = '127.0.0.50';
const HOST_ADDRS = ['127.0.0.51', '127.0.0.52', '127.0.0.53'];
/** Answers `$FOO` on $PORT. */
const WEB = ['node', '-e', `require('http').createServer((q, s) => s.end(process.env.FOO)).listen(Number(process.env.PORT))`];
const WORKER = ['sleep', '1000000'];
const APPS: Record<string, Record<string, number>> = { alpha: { web: 3 }, beta: { web: 2, worker: 1 } };

/** A process started again 300 ms after it exits (systemd's Restart=always), until `kill()`. */
class Supervised {
  private proc: ChildProcess | undefined;
  private wanted = false;
  private log = '';
  constructor(
    private readonly script: string,
    private readonly args: string[],
    private readonly env: Record<string, string>,
  ) {}

  start(): void {
    this.wanted = true;
    const proc = spawn(process.execPath, ['--import', TSX, this.script, ...this.args], { env: { ...process.env, ...this.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    const keep = (c: string) => (this.log = (this.log + c).slice(-4000));
    proc.stdout?.setEncoding('utf8').on('data', keep);
    proc.stderr?.setEncoding('utf8').on('data', keep);
    proc.once('exit', () => {
      if (this.wanted && this.proc === proc) setTimeout(() => this.wanted && this.proc === proc && this.start(), 300);
    });
  }

  /** SIGKILL it and stop supervising. */
  async kill(): Promise<void> {
    this.wanted = false;
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGKILL');
    await exited;
  }

  output(): string {
    return this.log;
  }
}

describe.runIf(await needDocker('whole-cluster recovery'))('whole-cluster recovery: etcd, 3 host agents and the platform SIGKILLed and started again', () => {
  const run = randomUUID().slice(0, 8);
  const key = `key-${randomUUID()}`;
  const docker = new Docker();
  let dir = '';
  let etcd: EtcdServer | undefined;
  const hosts: Supervised[] = [];
  let platform: Supervised | undefined;

  afterAll(async () => {
    await platform?.kill();
    await Promise.all(hosts.map((h) => h.kill()));
    if (dir) await stopRouterProcess(join(dir, 'platform'));
    for (const c of await docker.listContainers({ all: true, filters: { label: [`io.flynn-ts.test=${run}`] } })) await docker.getContainer(c.Id).remove({ force: true }).catch(() => {});
    await etcd?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  it('brings every app back to its formation, with no duplicate job and nothing lost, whatever the order', async () => {
    dir = await mkdtemp(join(tmpdir(), 'flynn-ts-whole-cluster-'));
    etcd = await startEtcdServer();
    const e = etcd;
    const hostKey = componentKey(key, 'host');
    hosts.push(
      ...HOST_ADDRS.map(
        (addr, i) =>
          new Supervised(HOST_MAIN, ['--id', `wc-${run}-${i + 1}`, '--data-dir', join(dir, `host${i + 1}`), '--runtime', 'docker', '--discovery', 'etcd', '--etcd-endpoints', e.endpoint, '--advertise-addr', addr, '--registration-ttl', '2000', '--container-labels', `io.flynn-ts.test=${run}`, '--log-level', 'warn'], { FLYNN_HOST_KEY: hostKey }),
      ),
    );
    const ports = { controller: await fixedPort(PLATFORM_HOST), router: await fixedPort(PLATFORM_HOST), git: await fixedPort(PLATFORM_HOST), shelf: await fixedPort(PLATFORM_HOST) };
    const platformDir = join(dir, 'platform');
    platform = new Supervised(
      PLATFORM_MAIN,
      ['--etcd', e.endpoint, '--host', PLATFORM_HOST, '--data-dir', platformDir, '--build', 'process', '--controller-port', String(ports.controller), '--router-port', String(ports.router), '--git-port', String(ports.git), '--shelf-port', String(ports.shelf)],
      { CONTROLLER_KEY: key },
    );
    const routerUrl = `http://${PLATFORM_HOST}:${ports.router}`;
    for (const h of hosts) h.start();
    platform.start();
    const p = platform;
    const certFile = join(platformDir, 'controller-tls.crt');
    const pin = await until(`the platform's certificate (${p.output()})`, async () => pinOf(await readFile(certFile, 'utf8')), 120_000);
    const client = new ControllerClient({ url: `https://${PLATFORM_HOST}:${ports.controller}`, key, tls: { pin } });
    await until('the controller', () => client.listApps(), 120_000);

    for (const [app, processes] of Object.entries(APPS)) {
      await client.createApp({ name: app });
      const release = await client.createRelease(app, { env: { FOO: `${app}-env` }, processes: { web: { cmd: WEB }, worker: { cmd: WORKER } } });
      await client.waitForDeployment(app, (await client.deploy(app, release.id)).id, { timeoutMs: 120_000 });
      await client.scale(app, processes);
      await client.createRoute(app, { type: 'http', domain: `${app}.flynn.local`, service: `${app}-web` });
    }
    await client.addKey(KEY_ED25519);

    const state = async () => ({
      apps: (await client.listApps()).map((a) => [a.name, a.releaseId]),
      releases: await Promise.all(Object.keys(APPS).map((a) => client.listReleases(a))),
      formations: await Promise.all(Object.keys(APPS).map((a) => client.listFormations(a))),
      env: await Promise.all(Object.keys(APPS).map((a) => client.getEnv(a))),
      routes: await client.listAllRoutes(),
      keys: await client.listKeys(),
    });
    /** When the last start of everything began, for the printed times. */
    let startedAt = 0;
    const running = async () => (await docker.listContainers({ filters: { label: [`io.flynn-ts.test=${run}`], status: ['running'] } })).map((c) => c.Id).sort();
    /** Every app at its formation (up jobs of each type, none starting), as many containers running, and answering through the router. */
    const atFormation = async (what: string): Promise<string[]> => {
      const total = Object.values(APPS).reduce((n, ps) => n + Object.values(ps).reduce((a, b) => a + b, 0), 0);
      await until(`${what}: every app at its formation`, async () => {
        for (const [app, processes] of Object.entries(APPS)) {
          const jobs = (await client.listJobs(app)).filter((j) => j.state === 'up' || j.state === 'starting');
          for (const [type, n] of Object.entries(processes)) if (jobs.filter((j) => j.type === type && j.state === 'up').length !== n) return undefined;
          if (jobs.length !== Object.values(processes).reduce((a, b) => a + b, 0)) return undefined;
        }
        return (await running()).length === total ? true : undefined;
      }, 120_000);
      for (const app of Object.keys(APPS)) expect((await serving(routerUrl, `${app}.flynn.local`, 60_000)).body).toBe(`${app}-env`);
      if (startedAt) console.log(`[measured] ${what}: every app at its formation and answering ${Date.now() - startedAt} ms after the first start (3 of them 1 s apart)`);
      return running();
    };

    const before = await state();
    const containers = await atFormation('first start');

    // One host agent SIGKILLed and started again with the same --id and data dir: it adopts its containers.
    await hosts[0]?.kill();
    hosts[0]?.start();
    expect(await atFormation('host 1 restarted')).toEqual(containers);

    const killAll = async () => {
      const router = await findRouter(platformDir);
      await Promise.all([p.kill(), ...hosts.map((h) => h.kill()), e.kill()]);
      if (router) process.kill(router.pid, 'SIGKILL');
    };
    const startAll = async (order: string[]) => {
      startedAt = Date.now();
      for (const what of order) {
        if (what === 'etcd') await e.start();
        else if (what === 'hosts') for (const h of hosts) h.start();
        else p.start();
        await new Promise((r) => setTimeout(r, 1_000));
      }
    };

    // etcd first, then the hosts, then the platform (a reboot's usual order): every container is adopted.
    await killAll();
    await startAll(['etcd', 'hosts', 'platform']);
    expect(await atFormation('etcd, hosts, platform')).toEqual(containers);
    expect(await state()).toEqual(before);

    // The platform first, then the hosts, etcd last: they fail and are started again until etcd answers.
    await killAll();
    const platformAlone = Date.now();
    p.start();
    // Its launcher starts the saved router first, from its last snapshot: the apps answer while etcd
    // and every host agent are still down.
    for (const app of Object.keys(APPS)) expect((await serving(routerUrl, `${app}.flynn.local`, 60_000)).body).toBe(`${app}-env`);
    console.log(`[measured] the platform alone, etcd and hosts down: every app answering ${Date.now() - platformAlone} ms after its start`);
    await startAll(['hosts', 'etcd']);
    const second = await atFormation('platform, hosts, etcd');
    console.log(`[measured] platform, hosts, etcd: ${second.filter((c) => containers.includes(c)).length} of ${containers.length} containers adopted`);
    expect(await state()).toEqual(before);

    // The hosts first, then the platform, etcd last.
    await killAll();
    await startAll(['hosts', 'platform', 'etcd']);
    await atFormation('hosts, platform, etcd');
    expect(await state()).toEqual(before);
    await client.close();
  }, 600_000);
});
