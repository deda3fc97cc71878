/**
 * Shipping a Dockerfile app's image to a host with an engine of its own, with real Docker: the
 * build saves the image into shelf (without its base image's layers); the image is then removed
 * from the engine (as on a host that never saw it) and a host agent starts a job in the pinned
 * image id: it loads the archive from a signed shelf URL, checks the id, and the job answers.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import Dockerode from 'dockerode';
import { pack } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryDiscovery } from '../../src/discovery/memory-backend.js';
import { startHostAgent, type HostAgentHandle } from '../../src/host/start.js';
import { HostClient } from '../../src/host/client.js';
import { DockerRuntime } from '../../src/host/docker-runtime.js';
import type { Job } from '../../src/host/types.js';
import { FsBlobStore, ShelfClient, shelfUrlSigner, startShelf, type Shelf } from '../../src/shelf/index.js';
import { buildDockerfile, type DockerfileBuild } from '../../src/slug/dockerfile.js';
import { waitFor } from '../host/agent-scenarios.js';
import { HOST_KEY, removeTestContainers } from '../host/support.js';
import { needDocker } from '../support/services.js';
import { FIXTURES } from './helpers.js';

const run = randomUUID().slice(0, 8);
const LABELS = { 'io.flynn-ts.test': '1', 'io.flynn-ts.test-run': run };
const SHELF_KEY = `shelf-key-${run}`;
const docker = new Dockerode();

const tarOf = (dir: string) => execFileSync('tar', ['-c', '-C', dir, '.'], { maxBuffer: 64 * 1024 * 1024 });

/** Remove only the images this file built (labelled with its run id). */
async function removeOurImages(): Promise<void> {
  const images = await docker.listImages({ filters: { label: [`io.flynn-ts.test-run=${run}`] } }).catch(() => []);
  for (const image of images) await docker.getImage(image.Id).remove({ force: true }).catch(() => {});
}

async function hasImage(id: string): Promise<boolean> {
  return docker.getImage(id).inspect().then(() => true, () => false);
}

if (await needDocker('image archives')) {
  describe('a Dockerfile image shipped through shelf to a host whose engine lacks it', () => {
    let root: string;
    let store: FsBlobStore;
    let shelf: Shelf;
    let shelfClient: ShelfClient;
    let sign: (url: string) => string;
    let host: HostAgentHandle;
    let client: HostClient;
    let runtime: DockerRuntime;
    const discovery = new MemoryDiscovery();

    beforeAll(async () => {
      root = await mkdtemp(path.join(tmpdir(), 'flynn-image-archive-'));
      store = new FsBlobStore({ root });
      shelf = await startShelf({ store, host: '127.0.0.1', port: 0, key: SHELF_KEY });
      shelfClient = new ShelfClient({ url: shelf.url, key: SHELF_KEY });
      sign = shelfUrlSigner({ url: shelf.url, key: SHELF_KEY });
      runtime = new DockerRuntime({ labels: LABELS });
      host = await startHostAgent({ key: HOST_KEY, id: `img-${run}`, advertiseAddr: '127.0.0.4', discovery, runtime, retainEndedMs: 3000, stopGraceMs: 500 });
      client = new HostClient({ url: host.url, key: HOST_KEY });
    });

    afterAll(async () => {
      for (const job of await client.listJobs().catch(() => [] as Job[])) await client.stopJob(job.id, { graceMs: 200 }).catch(() => {});
      await client?.close();
      await host?.close();
      await runtime?.close();
      await discovery.close();
      await removeTestContainers(run);
      await removeOurImages();
      await shelfClient?.close();
      await shelf?.close();
      await store?.close();
      await rm(root, { recursive: true, force: true });
    });

    const build = (context: Buffer | Readable, app: string, over: Partial<Parameters<typeof buildDockerfile>[0]> = {}) => {
      const lines: string[] = [];
      return buildDockerfile({ docker, context: Buffer.isBuffer(context) ? Readable.from([context]) : context, app, tag: run, labels: LABELS, archive: { shelf: shelfClient }, onOutput: (l) => lines.push(l), ...over }).then((b) => ({ ...b, lines }));
    };

    const startJob = (image: DockerfileBuild, imageArchive: string, over: Record<string, unknown> = {}) =>
      client.createJob({ id: `job-${randomUUID().slice(0, 8)}`, app: 'shipped', release: 'r1', type: 'web', image: image.imageId, cmd: image.processes.web!.cmd, ports: [{ port: 5000, proto: 'tcp' }], imageArchive: { url: imageArchive }, ...over });

    it('saves the image without the stack layers, and a host that lacks it loads it, checks its id and runs it', async () => {
      const greeting = `shipped-${run}`;
      const built = await build(tarOf(path.join(FIXTURES, 'dockerfile-web')), 'shipped', { buildArgs: { GREETING: greeting } });
      expect(built.archive?.url).toBe(`${shelf.url}/images/shipped/${built.imageId.slice('sha256:'.length)}.tar`);
      // The stack's 650 MB stay out: only the app's layers (a RUN output file and server.js) and the config.
      expect(built.archive!.bytes).toBeLessThan(1_000_000);
      expect(built.lines).toContain('-----> Saving the image into shelf, for hosts with an engine of their own');
      expect(built.lines.some((l) => /^ {7}\d+\.\d KB in \d+\.\d s \(without the 1 layer of flynn-ts\/stack:latest, which every host has\)$/.test(l)), built.lines.join('\n')).toBe(true);
      console.log(`dockerfile-web image save: ${built.archive!.bytes} bytes in ${built.archive!.durationMs} ms (build total ${built.durationMs} ms)`);

      // A host that never saw the image: remove it (and its tag) from the engine.
      await docker.getImage(built.imageId).remove({ force: true });
      expect(await hasImage(built.imageId)).toBe(false);

      const started = Date.now();
      const job = await startJob(built, sign(built.archive!.url));
      expect(job.state, JSON.stringify(job.error)).not.toBe('failed');
      const port = job.boundPorts[0]!.hostPort;
      const body = await waitFor('the loaded image to answer', async () => {
        const res = await fetch(`http://127.0.0.4:${port}/`).catch(() => undefined);
        return res?.status === 200 ? res.text() : undefined;
      }, 30_000);
      expect(body).toBe(`Hello from dockerfile-web (PORT=5000, greeting=[${greeting}] secret=[])\n`);
      console.log(`job start with the image load, to its first answer: ${Date.now() - started} ms`);
      // Loaded under its pinned id, and tagged as on the building engine.
      expect((await docker.getImage(built.name).inspect()).Id).toBe(built.imageId);
    }, 180_000);

    it('refuses an archive that holds another image, and an unsigned URL, in one line each', async () => {
      const built = await build(tarOf(path.join(FIXTURES, 'dockerfile-web')), 'other', { buildArgs: { GREETING: `other-${run}` } });
      const wrongId = `sha256:${'0'.repeat(64)}`;
      const wrong = await startJob({ ...built, imageId: wrongId }, sign(built.archive!.url));
      expect(wrong.state).toBe('failed');
      expect(wrong.error).toEqual({ code: 'FLYNN_ERR_HOST_IMAGE_LOAD', message: `the image archive at ${built.archive!.url} holds ${built.imageId}, not the job's image ${wrongId}` });

      await docker.getImage(built.imageId).remove({ force: true });
      const unsigned = await startJob(built, built.archive!.url);
      expect(unsigned.state).toBe('failed');
      expect(unsigned.error).toEqual({ code: 'FLYNN_ERR_HOST_ARTIFACT_FETCH', message: `cannot fetch the image archive of ${built.imageId} from ${built.archive!.url}: HTTP 401` });
    }, 120_000);

    it('fails the build in one line when shelf refuses the archive (no hang)', async () => {
      const tar = pack();
      tar.entry({ name: 'Dockerfile' }, `FROM flynn-ts/runtime:latest\nRUN echo ${run} > /x\n`);
      tar.finalize();
      const lines: string[] = [];
      const refusing = { urlFor: (p: string) => p, put: () => Promise.reject(new Error('no space left on the shelf')) };
      const err = await buildDockerfile({ docker, context: tar as unknown as Readable, app: 'refused', tag: run, labels: LABELS, archive: { shelf: refusing }, onOutput: (l) => lines.push(l) }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'FLYNN_ERR_SLUG_BUILD_FAILED', step: 'docker build' });
      expect(lines.at(-1)).toBe(' !     the image could not be saved into shelf: no space left on the shelf');
    }, 60_000);

    it('says what to do when the host lacks the base image whose layers the archive leaves out', async () => {
      // A base of our own on the stack, then an app on it: the archive leaves out the base's layers.
      const baseTag = `flynn-ts-test/base-${run}:1`;
      const base = pack();
      base.entry({ name: 'Dockerfile' }, `FROM flynn-ts/stack:latest\nLABEL io.flynn-ts.test-run=${run}\nRUN echo base-${run} > /base.txt\n`);
      base.finalize();
      const baseId = (await buildDockerfile({ docker, context: base as unknown as Readable, app: 'base', tag: run, labels: LABELS })).imageId;
      await docker.getImage(baseId).tag({ repo: baseTag.split(':')[0]!, tag: '1' });
      const app = pack();
      app.entry({ name: 'Dockerfile' }, `FROM ${baseTag}\nRUN echo app-${run} > /app.txt\nCMD ["cat", "/app.txt"]\n`);
      app.finalize();
      const built = await build(app as unknown as Readable, 'onbase', { archive: { shelf: shelfClient, baseImages: [baseTag] } });
      expect(built.lines.some((l) => l.endsWith(`(without the 2 layers of ${baseTag}, which every host has)`)), built.lines.join('\n')).toBe(true);
      await docker.getImage(built.imageId).remove({ force: true });
      await docker.getImage(baseId).remove({ force: true });
      const job = await client.createJob({ id: `job-${randomUUID().slice(0, 8)}`, app: 'onbase', release: 'r1', type: 'run', image: built.imageId, cmd: ['cat', '/app.txt'], imageArchive: { url: sign(built.archive!.url) } });
      expect(job.state).toBe('failed');
      expect(job.error?.code).toBe('FLYNN_ERR_HOST_IMAGE_LOAD');
      expect(job.error?.message).toMatch(/^docker load of the image archive of sha256:[0-9a-f]{64} failed \(it leaves out the layers of its base image, which this engine lacks: give this host the same base image, e.g. the stack with `npm run images`\): /);
    }, 120_000);
  });
}
