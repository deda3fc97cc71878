/**
 * `flynn scale` tells the truth about the jobs it started: up only when they came up and stayed
 * up; jobs that crash at once, or serve for a moment and exit, fail it in one line. Real cluster
 * (process runtime), the CLI as a user runs it, and the typed client's `scaleAndWait`.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestCluster, serverAddArgs, type TestCluster } from '../../src/bootstrap/index.js';
import { ControllerErrorCodes, ScaleFailedError, type ControllerClient } from '../../src/controller/index.js';
import { removeTestContainers } from '../host/support.js';
import { needDocker } from '../support/services.js';

const MAIN = resolve('src/cli/main.ts');
const TSX = pathToFileURL(resolve('node_modules/tsx/dist/loader.mjs')).href;

const SERVE = "require('http').createServer((q, s) => s.end('ok')).listen(process.env.PORT)";
const CMDS = {
  good: ['node', '-e', SERVE],
  crash: ['sh', '-c', 'echo booting; echo boom >&2; exit 3'],
  // Serves (answers the readiness probe), then exits.
  brief: ['node', '-e', `${SERVE}; setTimeout(() => { console.log('bye'); process.exit(4); }, 300)`],
};

/** An app whose current release has these process types, none of them running (web scaled to 0 first). */
async function appWith(client: ControllerClient, name: string, processes: Record<string, readonly string[]>, good: readonly string[] = CMDS.good): Promise<void> {
  await client.createApp({ name });
  const first = await client.createRelease(name, { processes: { web: { cmd: [...good] } } });
  await client.waitForDeployment(name, (await client.deploy(name, first.id)).id);
  await client.scale(name, { web: 0 });
  const release = await client.createRelease(name, { processes: Object.fromEntries(Object.entries(processes).map(([t, cmd]) => [t, { cmd: [...cmd] }])) });
  await client.waitForDeployment(name, (await client.deploy(name, release.id)).id);
}

describe('flynn scale reports up only jobs that came up and stayed up (process runtime)', () => {
  let cluster: TestCluster;
  let dir: string;
  const flynn = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((done) =>
      execFile(process.execPath, ['--import', TSX, MAIN, ...args], { env: { ...process.env, FLYNNRC: join(dir, 'flynnrc.json'), HOME: dir }, encoding: 'utf8' }, (err, stdout, stderr) =>
        done({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      ),
    );

  beforeAll(async () => {
    cluster = await createTestCluster({ runtime: 'process' });
    dir = await mkdtemp(join(tmpdir(), 'flynn-scale-truth-'));
    expect((await flynn(serverAddArgs(cluster, 'test'))).code).toBe(0);
  }, 120_000);

  afterAll(async () => {
    await cluster?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('fails a scale whose jobs crash at once in one line: the type, how many, the exit status, the last output and the log command', async () => {
    await appWith(cluster.client, 'crashes', { web: CMDS.crash });
    const res = await flynn(['scale', '-a', 'crashes', 'web=2']);
    expect(res.code).toBe(1);
    expect(res.stdout).toBe('');
    const lines = res.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    const m = /^flynn: scaled crashes to web=2, but (\d+) web jobs crashed instead of coming up: the last, (\w{8}), exited with status 3 after "boom" \(see flynn log -a crashes (\w{8})\)$/.exec(lines[0] ?? '');
    expect(m, res.stderr).not.toBeNull();
    expect(Number(m?.[1])).toBeGreaterThanOrEqual(2);
    expect(m?.[3]).toBe(m?.[2]);
    // The command it names shows that job's output.
    const log = await flynn(['log', '-a', 'crashes', m?.[2] as string]);
    expect(log.stdout).toBe('booting\n');
    expect(log.stderr).toBe('boom\n');
  }, 90_000);

  it('says up, as before, when the jobs come up and stay up', async () => {
    await appWith(cluster.client, 'serves', { web: CMDS.good });
    const res = await flynn(['scale', '-a', 'serves', 'web=2']);
    expect(res).toEqual({ code: 0, stdout: expect.stringMatching(/^scaled serves: web=2 \(up in \d+\.\d s\)\n$/) as unknown as string, stderr: '' });
    const jobs = await cluster.client.listJobs('serves');
    expect(jobs.filter((j) => j.type === 'web' && j.state === 'up')).toHaveLength(2);
  }, 90_000);

  it('does not call up a web job that answers for a moment and then exits', async () => {
    await appWith(cluster.client, 'brief', { web: CMDS.brief });
    const res = await flynn(['scale', '-a', 'brief', 'web=2']);
    expect(res.stdout).toBe('');
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/^flynn: scaled brief to web=2, but \d+ web jobs? crashed instead of coming up: the last, \w{8}, exited with status 4 after "bye" \(see flynn log -a brief \w{8}\)\n$/);
  }, 90_000);

  it('fails a scale of a crashing worker (up once it runs) too, and so does the typed client, with the exit status in detail', async () => {
    await appWith(cluster.client, 'worker', { web: CMDS.good, worker: ['sh', '-c', 'echo working; exit 2'] });
    const res = await flynn(['scale', '-a', 'worker', 'worker=1']);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/^flynn: scaled worker to worker=1, but \d+ worker jobs? crashed instead of coming up: the last, \w{8}, exited with status 2 after "working"/);
    const err = (await cluster.client.scaleAndWait('worker', { worker: 2 }).catch((e: unknown) => e)) as ScaleFailedError;
    expect(err).toBeInstanceOf(ScaleFailedError);
    expect(err.code).toBe(ControllerErrorCodes.SCALE_FAILED);
    expect(err.detail).toMatchObject({ type: 'worker', exit: { code: 2, reason: 'exit' }, output: ['working'] });
    // Good jobs: the client resolves with the time they took to come up.
    const { formation, upMs } = await cluster.client.scaleAndWait('worker', { worker: 0, web: 1 });
    expect(formation.processes).toEqual({ web: 1 }); // zeros are left out
    expect(upMs).toBeGreaterThan(0);
  }, 90_000);
});

if (await needDocker('scale of crashing Docker jobs')) {
  describe('scaleAndWait on the Docker runtime (stack image, python3)', () => {
    let cluster: TestCluster;
    const serve = ['python3', '-c', "import http.server, os; http.server.HTTPServer(('', int(os.environ['PORT'])), http.server.SimpleHTTPRequestHandler).serve_forever()"];

    beforeAll(async () => {
      cluster = await createTestCluster({ runtime: 'docker' });
    }, 120_000);

    afterAll(async () => {
      await cluster?.close();
      if (cluster) await removeTestContainers(cluster.runId);
    });

    it('fails on containers that crash at once or serve for a moment, and says up of ones that stay up', async () => {
      const { client } = cluster;
      await appWith(client, 'crashes', { web: ['sh', '-c', 'echo booting; echo boom >&2; exit 3'] }, serve);
      await expect(client.scaleAndWait('crashes', { web: 2 })).rejects.toThrow(/^\d+ web jobs crashed instead of coming up: the last, \w{8}, exited with status 3 after "boom" \(see flynn log -a crashes \w{8}\)$/);
      await appWith(client, 'brief', { web: ['timeout', '0.5', ...serve] }, serve);
      await expect(client.scaleAndWait('brief', { web: 2 })).rejects.toBeInstanceOf(ScaleFailedError);
      await appWith(client, 'serves', { web: serve }, serve);
      expect((await client.scaleAndWait('serves', { web: 2 })).upMs).toBeGreaterThan(0);
    }, 120_000);
  });
}
