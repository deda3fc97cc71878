/**
 * Build time of the other languages on the stack image, cold and cached, median of 3 each:
 *
 * - python-wsgi: the Python buildpack with one wheel, shipped in the app (`--no-index --find-links
 *   wheels`, so no index is needed); cold = no build cache in shelf.
 * - dockerfile-web: `docker build` of the Dockerfile fixture with the classic builder; cold = a
 *   fresh build arg before its RUN step (nothing after FROM comes from the layer cache), cached =
 *   the same build again.
 *
 * Needs Docker; runs on this checkout's stack image (`ensureStackImage`: built first when missing).
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import Dockerode from 'dockerode';
import { ensureStackImage } from '../../src/host/stack-image.js';
import { FsBlobStore, ShelfClient, startShelf } from '../../src/shelf/index.js';
import { buildDockerfile } from '../../src/slug/dockerfile.js';
import { buildSlug, cachePath, DockerBuildExecutor } from '../../src/slug/index.js';

const RUNS = 3;
const REPO = path.resolve(import.meta.dirname, '../..');
const FIXTURES = path.join(REPO, 'test/fixtures/apps');
const LABELS = { 'io.flynn-ts.bench': 'languages' };

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** python-wsgi with its dependency's wheel (built with the stack's pip, offline) inside the app. */
function pythonSource(stack: string): Buffer {
  const dir = mkdtempSync(path.join(tmpdir(), 'flynn-bench-py-'));
  try {
    cpSync(path.join(FIXTURES, 'python-wsgi'), path.join(dir, 'app'), { recursive: true });
    cpSync(path.join(REPO, 'test/fixtures/python/flynn-greet'), path.join(dir, 'pkg'), { recursive: true });
    execFileSync('docker', ['run', '--rm', '--network', 'none', '-v', `${dir}:/w`, stack, 'sh', '-c', 'cp -r /w/pkg /tmp/pkg && python3 -m pip wheel -q --no-deps --no-build-isolation --no-index /tmp/pkg -w /w/app/wheels']);
    writeFileSync(path.join(dir, 'app/requirements.txt'), '--no-index\n--find-links wheels\nflynn-greet==1.0.0\n');
    if (readdirSync(path.join(dir, 'app/wheels')).length !== 1) throw new Error('the wheel was not built');
    return execFileSync('tar', ['-c', '-C', path.join(dir, 'app'), '.'], { maxBuffer: 64 * 1024 * 1024 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const docker = new Dockerode();
  if (!(await docker.ping().then(() => true, () => false))) throw new Error('Docker is not answering');
  const stack = (await ensureStackImage({ docker })).name;
  const root = await mkdtemp(path.join(tmpdir(), 'flynn-bench-shelf-'));
  const store = new FsBlobStore({ root });
  const shelf = await startShelf({ store, host: '127.0.0.9' });
  const client = new ShelfClient({ url: shelf.url });
  const executor = new DockerBuildExecutor({ docker, image: stack, network: 'none', labels: LABELS });
  const built: string[] = [];
  try {
    console.log(`app             cold ms (median of ${RUNS})  cached ms  cold/cached`);
    const report = (app: string, cold: number[], warm: number[]) => {
      const [mc, mw] = [median(cold), median(warm)];
      console.log(`${app.padEnd(15)} ${String(mc).padStart(23)}  ${String(mw).padStart(9)}  ${(mc / mw).toFixed(2).padStart(11)}`);
    };

    const source = pythonSource(stack);
    const app = 'bench-python';
    const build = () => buildSlug({ source: Readable.from([source]), app, executor, shelf: client });
    const cold: number[] = [];
    const warm: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      await client.delete(cachePath(app));
      const c = await build();
      if (c.cached) throw new Error('a cold build found a cache');
      cold.push(c.durationMs);
      const w = await build();
      if (!w.cached) throw new Error('a second build found no cache');
      warm.push(w.durationMs);
    }
    report('python-wsgi', cold, warm);

    const context = execFileSync('tar', ['-c', '-C', path.join(FIXTURES, 'dockerfile-web'), '.']);
    const image = (arg: string) =>
      buildDockerfile({ docker, context: Readable.from([context]), app: 'bench-dockerfile', tag: `bench-${arg}`, buildArgs: { GREETING: arg }, labels: LABELS });
    const dCold: number[] = [];
    const dWarm: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const arg = `${Date.now()}-${i}`;
      const c = await image(arg);
      if (c.cachedSteps > 2) throw new Error(`a cold docker build used the layer cache for ${c.cachedSteps} steps`);
      dCold.push(c.durationMs);
      const w = await image(arg);
      if (w.cachedSteps < 5) throw new Error(`a second docker build used the layer cache for ${w.cachedSteps} steps only`);
      dWarm.push(w.durationMs);
      built.push(c.name);
    }
    report('dockerfile-web', dCold, dWarm);
  } finally {
    for (const name of built) await docker.getImage(name).remove({ force: true }).catch(() => {});
    await client.close();
    await shelf.close();
    await store.close();
    await rm(root, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
