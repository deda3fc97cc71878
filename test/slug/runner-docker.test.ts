// The slug runner inside the runtime image: fetching over HTTP, .profile.d, arbitrary commands,
// and a clear failure when the slug cannot be had.
import Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureRuntimeImage } from '../../src/host/runtime-image.js';
import { buildSlug } from '../../src/slug/builder.js';
import { ProcessBuildExecutor } from '../../src/slug/process-executor.js';
import { slugRunnerExec } from '../../src/slug/runner.js';
import type { BuildResult } from '../../src/slug/types.js';
import { needDocker } from '../support/services.js';
import { freePort, getText, removeTestContainers, runSlugInDocker, sourceTar, startTestShelf, TEST_LABELS, type TestShelf } from './helpers.js';

const HOST_IP = '127.0.0.8';
const docker = new Dockerode();

describe.runIf(await needDocker('slug runner on Docker'))('slug runner in the runtime image', () => {
  let shelf: TestShelf;
  let slug: BuildResult;

  beforeAll(async () => {
    await ensureRuntimeImage({ docker });
    shelf = await startTestShelf(HOST_IP);
    slug = await buildSlug({ source: await sourceTar('node-dep'), app: 'runner-test', executor: new ProcessBuildExecutor(), shelf: shelf.client });
  });
  afterAll(async () => {
    await removeTestContainers(docker);
    await shelf?.close();
  });

  /** Run the runner with `cmd` to completion and return its exit code and output. */
  async function runToEnd(cmd: string[], env: Record<string, string>): Promise<{ code: number; logs: string }> {
    const container = await docker.createContainer({
      Image: 'flynn-ts/runtime:latest',
      Cmd: cmd,
      Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      Labels: { ...TEST_LABELS, 'io.flynn-ts': '1', 'io.flynn-ts.role': 'slugrunner' },
      HostConfig: { NetworkMode: 'host' },
    });
    try {
      await container.start();
      const { StatusCode } = (await container.wait()) as { StatusCode: number };
      const logs = ((await container.logs({ stdout: true, stderr: true })) as unknown as Buffer).toString('latin1');
      return { code: StatusCode, logs };
    } finally {
      await container.remove({ force: true });
    }
  }

  it('fetches the slug from shelf over HTTP and serves the web type on $PORT', async () => {
    const port = await freePort(HOST_IP);
    const web = await runSlugInDocker(docker, { client: shelf.client, slugPath: slug.slugPath, type: 'web', hostIp: HOST_IP, network: 'host', port });
    try {
      expect((await getText(web.url)).body).toBe(`Hello from node-dep on port ${port}\n`);
    } finally {
      await web.stop();
    }
  });

  it('runs a command in the slug environment: HOME=/app, .profile.d sourced, release env passed', async () => {
    const { code, logs } = await runToEnd(slugRunnerExec(['sh', '-c', 'echo "home=$HOME pwd=$(pwd) env=$NODE_ENV path=$PATH greeting=$GREETING"; ls node_modules']), {
      SLUG_URL: shelf.client.urlFor(slug.slugPath),
      GREETING: 'hi',
    });
    expect(code).toBe(0);
    expect(logs).toContain('home=/app pwd=/app env=production');
    expect(logs).toContain('/app/node_modules/.bin');
    expect(logs).toContain('greeting=hi');
    expect(logs).toContain('tiny-greet');
  });

  it('exits 1 and says why when the slug is missing from shelf', async () => {
    const { code, logs } = await runToEnd(slugRunnerExec(['true']), { SLUG_URL: shelf.client.urlFor('/slugs/runner-test/missing.tgz') });
    expect(code).toBe(1);
    expect(logs).toContain('slugrunner: cannot fetch the slug from');
    expect(logs).toContain('HTTP 404');
  });

  it('exits 1 and lists the types when the process type does not exist', async () => {
    const { code, logs } = await runToEnd(['node', '-e', slugRunnerExec([])[2]!, '--', 'start', 'nope'], { SLUG_URL: shelf.client.urlFor(slug.slugPath) });
    expect(code).toBe(1);
    expect(logs).toContain('the slug has no process type "nope" (it has: web)');
  });
});
