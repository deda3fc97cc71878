import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ProcessRuntime } from '../../src/host/process-runtime.js';
import type { RuntimeEvent } from '../../src/host/runtime.js';
import type { LogLine } from '../../src/host/types.js';

const baseDir = await mkdtemp(join(tmpdir(), 'flynn-ts-appdir-'));
const runtime = new ProcessRuntime({ baseDir });
afterAll(async () => {
  await runtime.close();
  await rm(baseDir, { recursive: true, force: true });
});

// What the slug runner does with APP_DIR: unpack there. A job that finds another job's files
// in its app directory says so.
const CLAIM_APP_DIR = 'd=${APP_DIR:-/app}; mkdir -p "$d"; if [ -e "$d/owner" ]; then echo "taken by $(cat "$d/owner")"; else echo "$FLYNN_JOB_ID" > "$d/owner"; echo "$d"; fi';

async function runJob(): Promise<string> {
  const id = `appdir-${randomUUID().slice(0, 8)}`;
  const abort = new AbortController();
  const exited = (async () => {
    for await (const event of runtime.events({ signal: abort.signal }) as AsyncIterable<RuntimeEvent>) if (event.jobId === id) return;
  })();
  await runtime.start({
    hostId: 'h1',
    bindAddr: '127.0.0.1',
    ports: [],
    job: { id, app: 'a', release: 'r1', type: 'web', cmd: ['/bin/sh', '-c', CLAIM_APP_DIR], env: { FLYNN_JOB_ID: id }, ports: [], limits: {}, meta: {} },
  });
  await exited;
  abort.abort();
  const lines: LogLine[] = [];
  for await (const line of runtime.logs('h1', id, {})) lines.push(line);
  return lines.map((l) => l.line).join('\n');
}

describe('process runtime: app directory', () => {
  it('gives every job an app directory of its own, inside its job directory', async () => {
    const first = await runJob();
    const second = await runJob();
    expect(first.startsWith(baseDir)).toBe(true);
    expect(second.startsWith(baseDir)).toBe(true);
    expect(second).not.toBe(first);
  });
});
