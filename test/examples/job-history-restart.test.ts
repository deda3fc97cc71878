/**
 * `npm start` on the process runtime, SIGKILLed and started again on its data dir: a web job keeps
 * running and is adopted (same job, same pid), a one-off job that exited 3 is still listed with its
 * exit code and its last lines, and a job killed while the platform was down is replaced once.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stopRouterProcess } from '../../src/bootstrap/router-process.js';
import { pinOf } from '../../src/common/tls/self-signed.js';
import { ControllerClient } from '../../src/controller/client.js';
import { fixedPort, serving, startNpmStart as start, type Running } from '../support/npm-start.js';
import { alive } from '../support/processes.js';

const WEB = ['node', '-e', `require('http').createServer((q, s) => s.end(process.env.FLYNN_JOB_ID + ' ' + process.pid)).listen(Number(process.env.PORT))`];
const host = '127.0.0.47';

/** The process group of `pid` (a process job's group is its wrapper's: docs/host.md). */
const groupOf = async (pid: number) => Number((await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]?.split(' ')[2]);


describe('npm start on the process runtime: jobs and ended jobs across restarts', () => {
  let dataDir = '';
  const running: Running[] = [];
  const groups = new Set<number>();
  afterAll(async () => {
    for (const r of running) if (r.proc.exitCode === null) r.proc.kill('SIGKILL');
    if (dataDir) await stopRouterProcess(dataDir);
    // The app's processes outlive npm start: this run's are ended here.
    for (const group of groups) if (alive(group)) process.kill(-group, 'SIGKILL');
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  }, 60_000);

  it('adopts the running web job, keeps the ended one-off job with exit 3 and its lines, replaces a job killed while down once', async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'flynn-ts-job-history-'));
    const ports = { controller: await fixedPort(host), router: await fixedPort(host), git: await fixedPort(host), shelf: await fixedPort(host) };
    const args = ['--runtime', 'process', '--host', host, '--data-dir', dataDir, '--controller-port', String(ports.controller), '--router-port', String(ports.router), '--git-port', String(ports.git), '--shelf-port', String(ports.shelf)];
    const routerUrl = `http://${host}:${ports.router}`;
    const first = await start(args);
    running.push(first);
    const key = (await readFile(join(dataDir, 'controller-key'), 'utf8')).trim();
    const pin = pinOf(await readFile(join(dataDir, 'controller-tls.crt'), 'utf8'));
    const connect = () => new ControllerClient({ url: `https://${host}:${ports.controller}`, key, tls: { pin } });
    let client = connect();
    const app = 'history';
    await client.createApp({ name: app });
    const v1 = await client.createRelease(app, { processes: { web: { cmd: WEB } } });
    await client.waitForDeployment(app, (await client.deploy(app, v1.id)).id, { timeoutMs: 60_000 });
    await client.scale(app, { web: 1 });
    await client.createRoute(app, { type: 'http', domain: `${app}.flynn.local`, service: `${app}-web` });
    const served = (await serving(routerUrl, `${app}.flynn.local`)).body;
    const [webJob, webPid] = served.split(' ') as [string, string];
    const webGroup = await groupOf(Number(webPid));
    groups.add(webGroup);

    // A one-off job that prints and exits 3.
    let oneOff = '';
    let status: number | undefined;
    for await (const ev of client.run(app, { cmd: ['sh', '-c', 'echo line one; echo line two >&2; exit 3'] })) {
      if (ev.kind === 'job') oneOff = ev.id;
      if (ev.kind === 'exit') status = ev.status;
    }
    expect(status).toBe(3);
    const endedBefore = (await client.listJobs(app, { all: true })).find((j) => j.id === oneOff);
    expect(endedBefore).toMatchObject({ state: 'crashed', exit: { code: 3 } });

    // SIGKILL of the whole one-process platform (its host agent with it).
    first.proc.kill('SIGKILL');
    await first.exited;
    expect(alive(Number(webPid))).toBe(true);
    const restartAt = Date.now();
    const second = await start(args);
    running.push(second);
    const up = await serving(routerUrl, `${app}.flynn.local`);
    console.log(`[measured] process: npm start after SIGKILL → app answering ${up.at - restartAt} ms`);
    // Adopted, not restarted: the same job and process answer.
    expect(up.body).toBe(served);
    await client.close();
    client = connect();
    const jobs = await client.listJobs(app, { all: true });
    expect(jobs.filter((j) => j.state === 'up').map((j) => j.id)).toEqual([webJob]);
    expect(jobs.find((j) => j.id === oneOff)).toMatchObject({ state: 'crashed', exit: { code: 3, reason: 'exit' } });
    const lines: string[] = [];
    for await (const l of client.logs(app, { job: oneOff.slice(0, 8) })) lines.push(`${l.stream}:${l.msg}`);
    expect(lines.sort()).toEqual(['stderr:line two', 'stdout:line one']);

    // Killed while the platform is down: reported ended, replaced by the scheduler exactly once.
    second.proc.kill('SIGKILL');
    await second.exited;
    process.kill(-webGroup, 'SIGKILL');
    const third = await start(args);
    running.push(third);
    const again = await serving(routerUrl, `${app}.flynn.local`, 60_000, (body) => body !== served);
    const [newJob, newPid] = again.body.split(' ') as [string, string];
    groups.add(await groupOf(Number(newPid)));
    expect(newJob).not.toBe(webJob);
    await client.close();
    client = connect();
    await new Promise((r) => setTimeout(r, 3000));
    const after = await client.listJobs(app, { all: true });
    expect(after.filter((j) => j.state === 'up').map((j) => j.id)).toEqual([newJob]);
    expect(after.find((j) => j.id === webJob)?.state).toMatch(/crashed|down/);

    // Ctrl-C stops the platform only: the app's process keeps running.
    third.proc.kill('SIGTERM');
    expect(await third.exited, third.stdout() + third.stderr()).toBe(0);
    expect(alive(Number(newPid))).toBe(true);
    await client.close();
  }, 300_000);
});
