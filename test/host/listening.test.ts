import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { DockerRuntime } from '../../src/host/docker-runtime.js';
import { freePort } from '../../src/host/testing/jobs.js';
import { listensOutsideLoopback } from '../../src/host/socket-table.js';
import { needDocker } from '../support/services.js';
import { removeTestContainers, TEST_LABELS } from './support.js';

const listen = (host: string) =>
  new Promise<Server>((resolve) => {
    const server = createServer().listen(0, host, () => resolve(server));
  });
const portOf = (server: Server) => (server.address() as { port: number }).port;

describe("a process's socket table", () => {
  it('tells a listener reachable from outside from one on loopback only', async () => {
    const [loopback, any] = await Promise.all([listen('127.0.0.1'), listen('0.0.0.0')]);
    try {
      expect(await listensOutsideLoopback(process.pid, portOf(loopback))).toBe(false);
      expect(await listensOutsideLoopback(process.pid, portOf(any))).toBe(true);
      expect(await listensOutsideLoopback(2 ** 22 + 1, portOf(any))).toBeUndefined();
    } finally {
      loopback.close();
      any.close();
    }
  });
});

const run = randomUUID().slice(0, 6);
afterAll(() => removeTestContainers(run));

describe.runIf(await needDocker('docker runtime listeners'))('the Docker runtime', () => {
  // The published port's proxy accepts connections either way: only the container's own table tells.
  it('says whether a container listens on its port, and not when it listens on loopback only', async () => {
    const runtime = new DockerRuntime({ labels: TEST_LABELS(run) });
    const serve = (host: string): string[] => ['node', '-e', `require('net').createServer().listen(8080, '${host}', () => console.log('up'))`];
    try {
      const hostId = `listen-${run}`;
      const bindAddr = '127.0.0.7';
      const start = async (host: string, id: string) => {
        await runtime.start({ hostId, bindAddr, job: { id, app: `listen${run}`, release: 'r1', type: 'web', cmd: serve(host), env: {}, ports: [{ port: 8080, proto: 'tcp' }], limits: {}, meta: {} }, ports: [{ port: 8080, proto: 'tcp', hostPort: await freePort(bindAddr) }] });
        return id;
      };
      const [outside, inside] = [await start('0.0.0.0', `out-${run}`), await start('127.0.0.1', `in-${run}`)];
      const printedUp = async (id: string) => {
        for await (const l of runtime.logs(hostId, id)) if (l.line === 'up') return true;
        return false;
      };
      const listening = (id: string) => runtime.listening(hostId, id, 8080);
      await expect.poll(() => listening(outside), { timeout: 30_000 }).toBe(true);
      // Say no only once the loopback one has its listener (it prints "up" then).
      await expect.poll(() => printedUp(inside), { timeout: 30_000 }).toBe(true);
      expect(await listening(inside)).toBe(false);
      expect(await runtime.listening(hostId, 'no-such-job', 8080)).toBeUndefined();
    } finally {
      await runtime.close();
    }
  }, 90_000);
});
