import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const TSX = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;

it('a script that closes its cluster exits at once: nothing the cluster started keeps the process alive', async () => {
  const child = spawn(process.execPath, ['--import', TSX, join(import.meta.dirname, 'fixtures/close-and-exit.mts')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let closedAt = 0;
  child.stdout.on('data', (d: Buffer) => {
    if (d.toString().includes('closed')) closedAt = Date.now();
  });
  const code = await new Promise<number | null>((done) => child.once('exit', done));
  const lingered = Date.now() - closedAt;
  expect(code).toBe(0);
  expect(closedAt).toBeGreaterThan(0);
  // A timer left behind (the router's 5 s start-up wait was one) kept such scripts alive for seconds.
  expect(lingered).toBeLessThan(2_000);
}, 60_000);
