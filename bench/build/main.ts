/**
 * Build time, cold and cached, median of 5 each (`npm run bench -- build`):
 * - on the stack image (Docker, bridge network): express-lock, an express app with a lock file whose
 *   dependencies come from the npm registry (goal: a cached rebuild under 3 s), and python-wsgi with
 *   one wheel shipped in the app (`--no-index --find-links wheels`, no package index needed);
 * - dockerfile-web: `docker build` of the Dockerfile fixture (classic builder); cold = a fresh build
 *   arg before its RUN step, cached = the same build again; then shipping its image to a host with
 *   an engine of its own: the save into shelf (without the stack's layers) and the `docker load` on
 *   an engine that lacks it, and once the same with every layer, for comparison;
 * - on the slim runtime image (Docker, no network) and the process executor: the dependency-free
 *   node-hello and node-dep (one `file:` dependency), to show what the cache saves.
 * A slug build's cold run has no build cache; its cached run is the same source again. The stack
 * cases keep the cache on this host as the platform does (`cacheRoot`); `express (shelf)` is the
 * same app with its cache carried through shelf, as a builder without a kept cache has it.
 * The stack image's size is printed with it. `node --import tsx bench/build/main.ts express python
 * dockerfile slim process` runs only the groups named (all by default).
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import Dockerode from 'dockerode';
import { ensureRuntimeImage } from '../../src/host/runtime-image.js';
import { ensureStackImage } from '../../src/host/stack-image.js';
import { FsBlobStore, ShelfClient, startShelf } from '../../src/shelf/index.js';
import { dockerImageLoader } from '../../src/host/image-archive.js';
import { buildDockerfile } from '../../src/slug/dockerfile.js';
import { buildSlug, cachePath, DockerBuildExecutor, ProcessBuildExecutor, type BuildExecutor } from '../../src/slug/index.js';

const RUNS = 5;
const ONLY = process.argv.slice(2);
/** Whether the group of cases `name` runs (command-line arguments pick groups; none: all). */
const want = (name: 'express' | 'python' | 'dockerfile' | 'slim' | 'process') => ONLY.length === 0 || ONLY.includes(name);
const REPO = path.resolve(import.meta.dirname, '../..');
const FIXTURES = path.join(REPO, 'test/fixtures/apps');
const LABELS = { 'io.flynn-ts.bench': 'build' };
const CACHED_GOAL_MS = 3000;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Run `pair` RUNS times (each a cold and a cached build, in ms) and print the medians on one line. */
async function measure(label: string, app: string, pair: (run: number) => Promise<{ cold: number; cached: number }>): Promise<number> {
  const cold: number[] = [];
  const cached: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = await pair(i);
    cold.push(r.cold);
    cached.push(r.cached);
  }
  const [mc, mw] = [median(cold), median(cached)];
  console.log(`${label.padEnd(8)} ${app.padEnd(15)} ${String(mc).padStart(27)}  ${String(mw).padStart(9)}  ${(mc / mw).toFixed(2).padStart(11)}`);
  return mw;
}

/**
 * A slug build's cold and cached durations: the app's build cache removed, then the same source
 * twice. With `cacheRoot` the cache stays on this host, as the platform keeps it; else in shelf.
 */
function slugPair(executor: BuildExecutor, shelf: ShelfClient, app: string, source: Buffer, cacheRoot?: string) {
  const build = () => buildSlug({ source: Readable.from([source]), app, executor, shelf, ...(cacheRoot === undefined ? {} : { cacheRoot }) });
  return async () => {
    if (cacheRoot === undefined) await shelf.delete(cachePath(app));
    else await rm(path.join(cacheRoot, app), { recursive: true, force: true });
    const c = await build();
    if (c.cached) throw new Error('a cold build found a cache');
    const w = await build();
    if (!w.cached) throw new Error('a second build found no cache');
    return { cold: c.durationMs, cached: w.durationMs };
  };
}

/**
 * A fresh dockerfile-web image saved into shelf (`baseImages: []`: with every layer), removed from
 * the engine, then loaded back from shelf as a host whose engine lacks it does.
 */
async function shipOnce(docker: Dockerode, shelf: ShelfClient, context: Buffer, images: string[], baseImages?: string[]) {
  const arg = `${Date.now()}-ship`;
  const built = await buildDockerfile({ docker, context: Readable.from([context]), app: 'bench-dockerfile', tag: `ship-${arg}`, buildArgs: { GREETING: arg }, labels: LABELS, archive: { shelf, ...(baseImages ? { baseImages } : {}) } });
  images.push(built.name);
  await docker.getImage(built.imageId).remove({ force: true });
  const started = performance.now();
  if ((await dockerImageLoader(docker).ensure(built.imageId, built.archive!.url)) !== 'loaded') throw new Error('the image was not loaded');
  return { save: built.archive!.durationMs, load: Math.round(performance.now() - started), bytes: built.archive!.bytes };
}

const tarOf = (dir: string) => execFileSync('tar', ['-c', '-C', dir, '.'], { maxBuffer: 64 * 1024 * 1024 });

/** python-wsgi with its dependency's wheel (built with the stack's pip, offline) inside the app. */
function pythonSource(stack: string): Buffer {
  const dir = mkdtempSync(path.join(tmpdir(), 'flynn-bench-py-'));
  try {
    cpSync(path.join(FIXTURES, 'python-wsgi'), path.join(dir, 'app'), { recursive: true });
    cpSync(path.join(REPO, 'test/fixtures/python/flynn-greet'), path.join(dir, 'pkg'), { recursive: true });
    execFileSync('docker', ['run', '--rm', '--network', 'none', '-v', `${dir}:/w`, stack, 'sh', '-c', 'cp -r /w/pkg /tmp/pkg && python3 -m pip wheel -q --no-deps --no-build-isolation --no-index /tmp/pkg -w /w/app/wheels']);
    writeFileSync(path.join(dir, 'app/requirements.txt'), '--no-index\n--find-links wheels\nflynn-greet==1.0.0\n');
    if (readdirSync(path.join(dir, 'app/wheels')).length !== 1) throw new Error('the wheel was not built');
    return tarOf(path.join(dir, 'app'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const root = await mkdtemp(path.join(tmpdir(), 'flynn-bench-shelf-'));
  const store = new FsBlobStore({ root });
  const shelf = await startShelf({ store, host: '127.0.0.9' });
  const client = new ShelfClient({ url: shelf.url });
  const docker = new Dockerode();
  const images: string[] = [];
  try {
    console.log(`image    app           cold ms (median of ${RUNS})  cached ms  cold/cached`);
    if (await docker.ping().then(() => true, () => false)) {
      const stack = await ensureStackImage({ docker });
      const onStack = new DockerBuildExecutor({ docker, image: stack.name, labels: LABELS });
      // As the platform builds: the build cache kept on this host (cacheRoot).
      const cacheRoot = path.join(root, 'build-cache');
      if (want('express')) {
        const express = await measure('stack', 'express-lock', slugPair(onStack, client, 'bench-express-lock', tarOf(path.join(FIXTURES, 'express-lock')), cacheRoot));
        console.log(`         express-lock cached rebuild / ${CACHED_GOAL_MS} ms goal: ${(express / CACHED_GOAL_MS).toFixed(2)}x (${express <= CACHED_GOAL_MS ? 'met' : 'not met'})`);
        await measure('stack', 'express (shelf)', slugPair(onStack, client, 'bench-express-shelf', tarOf(path.join(FIXTURES, 'express-lock'))));
      }
      if (want('python')) await measure('stack', 'python-wsgi', slugPair(onStack, client, 'bench-python', pythonSource(stack.name), cacheRoot));
      if (want('dockerfile')) await dockerfileCases(docker, client, images);
      if (want('slim')) {
        await ensureRuntimeImage({ docker });
        const slim = new DockerBuildExecutor({ docker, network: 'none', labels: LABELS });
        for (const fixture of ['node-hello', 'node-dep']) await measure('slim', fixture, slugPair(slim, client, `bench-${fixture}`, tarOf(path.join(FIXTURES, fixture))));
      }
      console.log(`stack image ${stack.name}: ${(stack.sizeBytes / 1e6).toFixed(1)} MB`);
    } else {
      console.log('Docker is not answering: measuring the process executor only');
    }
    const processes = new ProcessBuildExecutor();
    if (want('process')) for (const fixture of ['node-hello', 'node-dep']) await measure('process', fixture, slugPair(processes, client, `bench-${fixture}`, tarOf(path.join(FIXTURES, fixture))));
  } finally {
    for (const name of images) await docker.getImage(name).remove({ force: true }).catch(() => {});
    await client.close();
    await shelf.close();
    await store.close();
    await rm(root, { recursive: true, force: true });
  }
}

/** dockerfile-web's image build, cold and cached; then shipping its image through shelf. */
async function dockerfileCases(docker: Dockerode, client: ShelfClient, images: string[]): Promise<void> {
  const context = tarOf(path.join(FIXTURES, 'dockerfile-web'));
  await measure('docker', 'dockerfile-web', async (run) => {
    const arg = `${Date.now()}-${run}`;
    const image = () => buildDockerfile({ docker, context: Readable.from([context]), app: 'bench-dockerfile', tag: `bench-${arg}`, buildArgs: { GREETING: arg }, labels: LABELS });
    const c = await image();
    if (c.cachedSteps > 2) throw new Error(`a cold docker build used the layer cache for ${c.cachedSteps} steps`);
    images.push(c.name);
    const w = await image();
    if (w.cachedSteps < 5) throw new Error(`a second docker build used the layer cache for ${w.cachedSteps} steps only`);
    return { cold: c.durationMs, cached: w.durationMs };
  });
  const shipped = [];
  for (let i = 0; i < RUNS; i++) shipped.push(await shipOnce(docker, client, context, images));
  const full = await shipOnce(docker, client, context, images, []);
  console.log(`ship     dockerfile-web  save ${median(shipped.map((s) => s.save))} ms, load ${median(shipped.map((s) => s.load))} ms, ${median(shipped.map((s) => s.bytes))} bytes (median of ${RUNS}; without the stack's layers)`);
  console.log(`ship     with every layer save ${full.save} ms, load ${full.load} ms, ${(full.bytes / 1e6).toFixed(1)} MB (1 run)`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
