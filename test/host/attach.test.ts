/**
 * `GET /jobs/:id/attach` on a host agent: an interactive job's stdin, output and exit status over
 * one upgraded connection, with the host key; Docker adds a pseudo-terminal and its size.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FrameType, type FrameChannel } from '../../src/common/http/frames.js';
import { createDiscovery } from '../../src/discovery/index.js';
import { DockerRuntime } from '../../src/host/docker-runtime.js';
import { HostClient } from '../../src/host/client.js';
import { startHostAgent } from '../../src/host/start.js';
import { ProcessRuntime } from '../../src/host/process-runtime.js';
import type { Runtime } from '../../src/host/runtime.js';
import { needDocker } from '../support/services.js';
import { HOST_KEY, removeTestContainers, TEST_LABELS } from './support.js';

const run = randomUUID().slice(0, 6);
const baseDir = await mkdtemp(join(tmpdir(), 'flynn-ts-attach-'));
afterAll(async () => {
  await rm(baseDir, { recursive: true, force: true });
  await removeTestContainers(run);
});

/** Every frame until the channel ends: output joined, and the last frame's JSON. */
async function drain(ch: FrameChannel): Promise<{ out: string; err: string; last: { type: number; json: unknown } | undefined }> {
  let out = '';
  let err = '';
  let last: { type: number; json: unknown } | undefined;
  for await (const f of ch) {
    if (f.type === FrameType.stdout) out += f.data.toString();
    else if (f.type === FrameType.stderr) err += f.data.toString();
    else if (f.type === FrameType.exit || f.type === FrameType.error) last = { type: f.type, json: JSON.parse(f.data.toString()) };
  }
  return { out, err, last };
}

function describeAttach(name: string, runtime: () => Runtime, tty: boolean) {
  // Both runtimes give tty jobs a terminal now (the process runtime through python3's pty module).
  describe(`attach (${name})`, () => {
    const withAgent = async (fn: (client: HostClient) => Promise<void>) => {
      const discovery = createDiscovery({ backend: 'memory' });
      const rt = runtime();
      const agent = await startHostAgent({ id: `attach-${run}`, advertiseAddr: '127.0.0.5', discovery, runtime: rt, key: HOST_KEY, stopGraceMs: 1000 });
      const client = new HostClient({ url: agent.url, key: HOST_KEY });
      try {
        await fn(client);
      } finally {
        await client.close();
        await agent.close();
        await rt.close();
        await discovery.close();
      }
    };
    const job = (cmd: string[], extra: Record<string, unknown> = {}) => ({ id: `j-${randomUUID().slice(0, 8)}`, app: 'a', release: 'r', type: 'run', cmd, oneOff: true, stdin: true, ...extra });

    it('streams stdin to the job and ends with its exit status; a second attach is refused', async () => {
      await withAgent(async (client) => {
        const created = await client.createJob(job(['sh', '-c', 'cat; echo bye >&2; exit 5']));
        const ch = await client.attach(created.id);
        ch.send(FrameType.stdin, 'hello\n');
        ch.send(FrameType.eof);
        expect(await drain(ch)).toEqual({ out: 'hello\n', err: 'bye\n', last: { type: FrameType.exit, json: { status: 5 } } });
        const again = await drain(await client.attach(created.id));
        expect(again.last).toMatchObject({ type: FrameType.error, json: { code: 'FLYNN_ERR_HOST_JOB_NOT_RUNNING' } });
      });
    }, 60_000);

    it('refuses an attach without the host key, and to a job started without stdin', async () => {
      await withAgent(async (client) => {
        const created = await client.createJob({ ...job(['sleep', '5']), stdin: false });
        await expect(new HostClient({ url: client.url, key: 'wrong' }).attach(created.id)).rejects.toMatchObject({ code: 'FLYNN_ERR_HOST_UNAUTHORIZED' });
        const refused = await drain(await client.attach(created.id));
        expect(refused.last).toMatchObject({ type: FrameType.error, json: { code: 'FLYNN_ERR_HOST_INVALID_JOB' } });
        await client.stopJob(created.id, { graceMs: 0 });
      });
    }, 60_000);

    if (tty) {
      it('gives a tty job a terminal whose size follows resize frames', async () => {
        await withAgent(async (client) => {
          const created = await client.createJob(job(['sh', '-c', 'read _; stty size; exit 2'], { tty: true }));
          const ch = await client.attach(created.id);
          ch.send(FrameType.resize, JSON.stringify({ cols: 123, rows: 45 }));
          ch.send(FrameType.stdin, 'go\r');
          const got = await drain(ch);
          expect(got.out).toContain('45 123\r\n');
          expect(got.last).toEqual({ type: FrameType.exit, json: { status: 2 } });
        });
      }, 60_000);
    }
  });
}

describeAttach('process', () => new ProcessRuntime({ baseDir }), true);
if (await needDocker('host attach on Docker')) describeAttach('docker', () => new DockerRuntime({ labels: TEST_LABELS(run) }), true);
