import { readdirSync, existsSync } from 'node:fs';
import { defineConfig } from 'tsup';

// One entry per module that has a public face (src/<module>/index.ts), plus the CLI binary.
const modules = readdirSync('src', { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(`src/${d.name}/index.ts`))
  .map((d) => `src/${d.name}/index.ts`);
// Testing helpers users run in their own suites, and files spawned as child processes.
const extras = ['src/discovery/testing/index.ts', 'src/discovery/testing/owner-process.ts', 'src/scheduler/testing/index.ts', 'src/controller/testing/index.ts', 'src/host/testing/index.ts', 'src/shelf/testing/index.ts', 'src/cli/main.ts', 'src/router/node-worker.ts'].filter((f) => existsSync(f));

export default defineConfig({
  entry: [...modules, ...extras],
  // The conformance suites run inside the user's vitest.
  external: ['vitest'],
  format: ['esm'],
  target: 'node20',
  dts: true,
  sourcemap: true,
  clean: true,
  splitting: true,
  outDir: 'dist',
});
