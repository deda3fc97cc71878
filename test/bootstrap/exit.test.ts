import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const TSX = pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;

it('a script that closes its cluster exits at once: nothing the cluster started keeps the process alive', async () => {
  const child = spawn(process.execPath, ['--import', TSX, join(import.meta.dirname, 'fixtures/close-and-exit.mts')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const code = await new Promise<number | null>((done) => child.once('exit', done));
  expect(code).toBe(0);
  const resources = JSON.parse(/^closed (.*)$/m.exec(out)?.[1] ?? 'null') as string[] | null;
  expect(resources, out).not.toBeNull();
  // A timer left behind (the router's 5 s start-up wait was one) kept such scripts alive for seconds;
  // so would a server, socket or child process. Left: the script's own stdio, and an fs request finishing.
  expect(resources!.filter((r) => !['PipeWrap', 'TTYWrap', 'FSReqCallback'].includes(r))).toEqual([]);
}, 60_000);
