/**
 * Slug build time: the dependency-free node-hello app, cold (no build cache in shelf) and with its
 * cache, median of 5 each, on the Docker executor (when Docker answers) and the process executor.
 * node-dep (one npm dependency) is measured the same way to show what the cache saves.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import Dockerode from 'dockerode';
import { ensureRuntimeImage } from '../../src/host/runtime-image.js';
import { FsBlobStore, ShelfClient, startShelf } from '../../src/shelf/index.js';
import { buildSlug, cachePath, DockerBuildExecutor, ProcessBuildExecutor, type BuildExecutor } from '../../src/slug/index.js';

const RUNS = 5;
const FIXTURES = path.resolve(import.meta.dirname, '../../test/fixtures/apps');

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const root = await mkdtemp(path.join(tmpdir(), 'flynn-bench-shelf-'));
  const store = new FsBlobStore({ root });
  const shelf = await startShelf({ store, host: '127.0.0.9' });
  const client = new ShelfClient({ url: shelf.url });
  const executors: BuildExecutor[] = [];
  const docker = new Dockerode();
  if (await docker.ping().then(() => true, () => false)) {
    await ensureRuntimeImage({ docker });
    executors.push(new DockerBuildExecutor({ docker, labels: { 'io.flynn-ts.bench': 'build' } }));
  } else {
    console.log('Docker is not answering: measuring the process executor only');
  }
  executors.push(new ProcessBuildExecutor());
  try {
    console.log(`executor  app         cold ms (median of ${RUNS})  cached ms  cold/cached`);
    for (const executor of executors) {
      for (const fixture of ['node-hello', 'node-dep']) {
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
        console.log(`${executor.name.padEnd(9)} ${fixture.padEnd(11)} ${String(mc).padStart(27)}  ${String(mw).padStart(9)}  ${(mc / mw).toFixed(2).padStart(11)}`);
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
