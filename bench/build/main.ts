/**
 * Slug build time, cold (no build cache in shelf) and with its cache (a second build of the same
 * source), median of 5 each:
 * - on the stack image (Docker, bridge network): express-lock, an express app with a lock file whose
 *   dependencies come from the npm registry; the goal is a cached rebuild under 3 s;
 * - on the slim runtime image (Docker, no network) and the process executor: the dependency-free
 *   node-hello and node-dep (one `file:` dependency), to show what the cache saves.
 * The stack image's size is printed with it.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import Dockerode from 'dockerode';
import { ensureRuntimeImage } from '../../src/host/runtime-image.js';
import { ensureStackImage } from '../../src/host/stack-image.js';
import { FsBlobStore, ShelfClient, startShelf } from '../../src/shelf/index.js';
import { buildSlug, cachePath, DockerBuildExecutor, ProcessBuildExecutor, type BuildExecutor } from '../../src/slug/index.js';

const RUNS = 5;
const FIXTURES = path.resolve(import.meta.dirname, '../../test/fixtures/apps');
const CACHED_GOAL_MS = 3000;

interface Case {
  label: string;
  executor: BuildExecutor;
  fixtures: string[];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const root = await mkdtemp(path.join(tmpdir(), 'flynn-bench-shelf-'));
  const store = new FsBlobStore({ root });
  const shelf = await startShelf({ store, host: '127.0.0.9' });
  const client = new ShelfClient({ url: shelf.url });
  const cases: Case[] = [];
  const docker = new Dockerode();
  const labels = { 'io.flynn-ts.bench': 'build' };
  if (await docker.ping().then(() => true, () => false)) {
    const stack = await ensureStackImage({ docker });
    console.log(`stack image ${stack.name}: ${(stack.sizeBytes / 1e6).toFixed(1)} MB`);
    cases.push({ label: 'stack', executor: new DockerBuildExecutor({ docker, image: stack.name, labels }), fixtures: ['express-lock'] });
    await ensureRuntimeImage({ docker });
    cases.push({ label: 'slim', executor: new DockerBuildExecutor({ docker, network: 'none', labels }), fixtures: ['node-hello', 'node-dep'] });
  } else {
    console.log('Docker is not answering: measuring the process executor only');
  }
  cases.push({ label: 'process', executor: new ProcessBuildExecutor(), fixtures: ['node-hello', 'node-dep'] });
  try {
    console.log(`image    app           cold ms (median of ${RUNS})  cached ms  cold/cached`);
    for (const { label, executor, fixtures } of cases) {
      for (const fixture of fixtures) {
        const source = execFileSync('tar', ['-c', '-C', path.join(FIXTURES, fixture), '.'], { maxBuffer: 64 * 1024 * 1024 });
        const app = `bench-${fixture}`;
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
        const [mc, mw] = [median(cold), median(warm)];
        console.log(`${label.padEnd(8)} ${fixture.padEnd(13)} ${String(mc).padStart(27)}  ${String(mw).padStart(9)}  ${(mc / mw).toFixed(2).padStart(11)}`);
        if (label === 'stack') console.log(`         cached rebuild / ${CACHED_GOAL_MS} ms goal: ${(mw / CACHED_GOAL_MS).toFixed(2)}x (${mw <= CACHED_GOAL_MS ? 'met' : 'not met'})`);
      }
    }
  } finally {
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
