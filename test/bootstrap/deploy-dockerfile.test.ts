/**
 * Dockerfile deploys: real `git push` over SSH of an app with a Dockerfile FROM the stack image to
 * a Docker cluster, built by the host's engine and answering through the router on its EXPOSEd
 * port; a second push reuses the layer cache; a failing RUN rejects the push with docker's line;
 * the process runtime refuses a Dockerfile app in one line.
 */
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import Dockerode from 'dockerode';
import { pack } from 'tar-stream';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestCluster, type TestCluster } from '../../src/bootstrap/index.js';
import { buildDockerfile } from '../../src/slug/dockerfile.js';
import { needDocker } from '../support/services.js';
import { getVia, until } from './deploy-scenario.js';
import { pusher } from './pusher.js';

const docker = new Dockerode();
const runs: TestCluster[] = [];

/** Remove the images the clusters of this file built (labelled with their run id). */
afterAll(async () => {
  for (const run of runs) {
    const images = await docker.listImages({ filters: { label: [`io.flynn-ts.test-run=${run.runId}`] } }).catch(() => []);
    for (const image of images) await docker.getImage(image.Id).remove({ force: true }).catch(() => {});
  }
});

/** A Docker test cluster whose images the file removes afterwards. */
const dockerCluster = (shipImages?: boolean) => async () => {
  const cluster = await createTestCluster({ runtime: 'docker', ...(shipImages === undefined ? {} : { shipImages }) });
  runs.push(cluster);
  return cluster;
};

/** Create `app` with `GREETING` as a build arg (meta `docker_build_args`) and set `env`, waiting for the deploy it starts. */
async function greetingApp(cluster: TestCluster, app: string, env: Record<string, string>): Promise<void> {
  await cluster.client.createApp({ name: app, meta: { docker_build_args: 'GREETING' } });
  const set = await cluster.client.setEnv(app, env);
  if (set.deployment) await cluster.client.waitForDeployment(app, set.deployment.id);
}

/** `flynn run <app> cat /build-args.txt`: its output and exit status. */
async function buildArgsOf(cluster: TestCluster, app: string): Promise<{ out: string; status: number }> {
  let out = '';
  let status = -1;
  for await (const o of cluster.client.run(app, { cmd: ['cat', '/build-args.txt'] })) {
    if (o.kind === 'output') out += o.data;
    if (o.kind === 'exit') status = o.status;
  }
  return { out, status };
}

if (await needDocker('Dockerfile deploys')) {
  describe('Dockerfile deploys (docker runtime)', () => {
    const { ctx, push } = pusher(dockerCluster());

    it('builds the Dockerfile with the engine, runs its CMD as web on the EXPOSEd port, with only the build args meta lists; a second push uses the layer cache', async () => {
      const { client } = ctx.cluster;
      // The run id in the build arg makes the first push a cold build (its RUN step is not in the engine's cache).
      const greeting = `hi-${ctx.cluster.runId}`;
      await greetingApp(ctx.cluster, 'dockerweb', { GREETING: greeting, SECRET: 'not-for-the-image' });
      const cold = await push('dockerfile-web', 'dockerweb', { existing: true });
      expect(cold.code, cold.output).toBe(0);
      expect(cold.remote).toContain('-----> Building the Dockerfile with the Docker engine (image flynn-ts-app/dockerweb:' + cold.remote.find((l) => l.startsWith('-----> Building the Dockerfile'))?.split(':').at(-1));
      expect(cold.remote.some((l) => /^ {7}Step 1\/\d+ : FROM flynn-ts\/stack:latest$/.test(l)), cold.output).toBe(true);
      expect(cold.remote).toContain('       Image CMD -> web (["node","server.js"])');
      expect(cold.remote.filter((l) => l === '        ---> Using cache').length, cold.output).toBeLessThan(3);
      expect(cold.remote).toContain('       EXPOSE 5000: web listens there, PORT=5000');
      expect(cold.remote).toContain(`=====> dockerweb deployed to ${ctx.cluster.appUrl('dockerweb')}`);
      const artifact = await client.getArtifact((await client.currentRelease('dockerweb')).artifactId!);
      expect(artifact).toMatchObject({ type: 'docker', url: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) });
      const answer = () =>
        until('dockerweb to answer through the router', async () => {
          const r = await getVia(ctx.cluster.routerUrl, `dockerweb.${ctx.cluster.domain}`);
          return r.status === 200 ? r : undefined;
        });
      expect((await answer()).body).toBe(`Hello from dockerfile-web (PORT=5000, greeting=[${greeting}] secret=[])\n`);

      const cached = await push('dockerfile-web', 'dockerweb', { existing: true });
      expect(cached.code, cached.output).toBe(0);
      expect(cached.remote.filter((l) => l === '        ---> Using cache').length, cached.output).toBeGreaterThanOrEqual(3);
      expect(cached.remote.some((l) => /^-----> Built sha256:[0-9a-f]{12} \(.* MB\), \d+ steps from the layer cache$/.test(l)), cached.output).toBe(true);
      expect((await answer()).body).toBe(`Hello from dockerfile-web (PORT=5000, greeting=[${greeting}] secret=[])\n`);
      console.log(`dockerfile-web push (build + deploy): cold ${cold.ms} ms, cached ${cached.ms} ms`);

      // A one-off job runs in the app's image too.
      expect(await buildArgsOf(ctx.cluster, 'dockerweb')).toEqual({ out: `greeting=[${greeting}] secret=[]\n`, status: 0 });
    }, 180_000);

    it("rejects a push whose Dockerfile fails with docker's error line", async () => {
      const pushed = await push('dockerfile-fails', 'dockerfails');
      expect(pushed.code).not.toBe(0);
      expect(pushed.remote, pushed.output).toContain('       compiling the app');
      expect(pushed.remote).toContain(" !     The command '/bin/sh -c echo \"compiling the app\"; exit 3' returned a non-zero code: 3");
      expect(pushed.output).not.toContain('deployed to');
      expect((await ctx.cluster.client.getApp('dockerfails')).releaseId).toBeNull();
    }, 120_000);
  });

  describe('Dockerfile deploys shipped through shelf (docker runtime, shipImages)', () => {
    const { ctx, push } = pusher(dockerCluster(true));

    it('saves the image into shelf with the release; a host engine without it loads it for a one-off job and for web, which answers', async () => {
      const { client } = ctx.cluster;
      const greeting = `ship-${ctx.cluster.runId}`;
      await greetingApp(ctx.cluster, 'shipweb', { GREETING: greeting });
      const pushed = await push('dockerfile-web', 'shipweb', { existing: true });
      expect(pushed.code, pushed.output).toBe(0);
      expect(pushed.remote).toContain('-----> Saving the image into shelf, for hosts with an engine of their own');
      const artifact = await client.getArtifact((await client.currentRelease('shipweb')).artifactId!);
      const noneRunning = async () => ((await docker.listContainers({ filters: { ancestor: [artifact.url] } })).length > 0 ? undefined : true);
      expect(artifact.archiveUrl).toBe(`${ctx.cluster.shelfUrl}/images/shipweb/${artifact.url.slice('sha256:'.length)}.tar`);

      // The engine forgets the image, as a host with an engine of its own never had it: stop web, remove the image.
      await client.scale('shipweb', { web: 0 });
      await until('web to stop', noneRunning);
      await docker.getImage(artifact.url).remove({ force: true });
      expect(await docker.getImage(artifact.url).inspect().then(() => true, () => false)).toBe(false);

      expect(await buildArgsOf(ctx.cluster, 'shipweb')).toEqual({ out: `greeting=[${greeting}] secret=[]\n`, status: 0 });
      expect((await docker.getImage(artifact.url).inspect()).Id).toBe(artifact.url);

      // Once more for web: gone again, loaded again when the formation starts it.
      await until('the one-off job to go', noneRunning);
      await docker.getImage(artifact.url).remove({ force: true });
      await client.scale('shipweb', { web: 1 });
      const answer = await until('shipweb to answer through the router', async () => {
        const r = await getVia(ctx.cluster.routerUrl, `shipweb.${ctx.cluster.domain}`);
        return r.status === 200 ? r : undefined;
      });
      expect(answer.body).toBe(`Hello from dockerfile-web (PORT=5000, greeting=[${greeting}] secret=[])\n`);
    }, 240_000);
  });

  describe('Dockerfile builds', () => {
    it('run their RUN steps on the network they are given (none: loopback only)', async () => {
      const tar = pack();
      tar.entry({ name: 'Dockerfile' }, `FROM flynn-ts/stack:latest\nRUN echo "interfaces: $(ls /sys/class/net | tr '\\n' ' ')run-${randomUUID().slice(0, 6)}"\n`);
      tar.finalize();
      const lines: string[] = [];
      const built = await buildDockerfile({ docker, context: tar as unknown as Readable, app: 'netnone', tag: 'x', network: 'none', labels: { 'io.flynn-ts.test': '1' }, onOutput: (l) => lines.push(l) });
      try {
        expect(lines.find((l) => l.startsWith('       interfaces: ')), lines.join('\n')).toMatch(/^ {7}interfaces: lo run-/);
      } finally {
        await docker.getImage(built.imageId).remove({ force: true }).catch(() => {});
      }
    }, 30_000);

    it('stop at their timeout, saying so, and the engine cancels the step', async () => {
      const run = randomUUID().slice(0, 8);
      const tar = pack();
      tar.entry({ name: 'Dockerfile' }, `FROM flynn-ts/stack:latest\nRUN echo started-${run}; sleep 60\n`);
      tar.finalize();
      const lines: string[] = [];
      // A build that ignored timeoutMs would run its 60 s, past the test's timeout. The timeout leaves the
      // engine time to reach the RUN step on a loaded machine (it took 0.45-0.65 s here at load 5).
      const err = await buildDockerfile({ docker, context: tar as unknown as Readable, app: 'slow', tag: run, timeoutMs: 8000, labels: { 'io.flynn-ts.test': '1' }, onOutput: (l) => lines.push(l) }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'FLYNN_ERR_SLUG_BUILD_TIMEOUT', step: 'docker build' });
      expect(lines).toContain(`       started-${run}`);
      expect(lines.at(-1)).toBe(' !     Build timed out after 8000 ms');
      await until('the build container to go', async () => {
        const left = await docker.listContainers({ all: true });
        return left.some((c) => c.Command.includes(`started-${run}`)) ? undefined : true;
      });
    }, 30_000);
  });

  describe('Dockerfile deploys (process runtime)', () => {
    const { push } = pusher(() => createTestCluster({ runtime: 'process' }));
    it('refuses a Dockerfile app in one line', async () => {
      const pushed = await push('dockerfile-web', 'dockerproc');
      expect(pushed.code).not.toBe(0);
      expect(pushed.output).toContain('this app has a Dockerfile, but this cluster runs apps as host processes (process runtime): a Dockerfile app needs the Docker runtime');
    }, 60_000);
  });
}
