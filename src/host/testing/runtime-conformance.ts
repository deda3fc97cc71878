/**
 * The one conformance suite every {@link Runtime} passes: `describeRuntime('docker', () => new
 * DockerRuntime())`. Uses vitest; needs `node` inside the runtime's jobs (the runtime image has it).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../../common/until.js';
import type { Runtime, RuntimeEvent, RuntimeJobSpec } from '../runtime.js';
import type { ExitStatus, JobSpec, LogLine } from '../types.js';
import { chattyCmd, crashCmd, fetchWhenUp, freePort, HTTP_SERVER_CMD, MEMORY_HOG_CMD, STUBBORN_CMD } from './jobs.js';

export interface RuntimeSuiteOptions {
  /** Address ports are bound on. Default `127.0.0.2`. */
  bindAddr?: string;
}

export function describeRuntime(name: string, factory: () => Runtime | Promise<Runtime>, options: RuntimeSuiteOptions = {}): void {
  const bindAddr = options.bindAddr ?? '127.0.0.2';
  const run = randomUUID().slice(0, 8);
  const hostA = `conf-${run}-a`;
  const hostB = `conf-${run}-b`;

  describe(`Runtime conformance: ${name}`, () => {
    let runtime: Runtime;
    const exits = new Map<string, ExitStatus>();
    const waiters = new Map<string, (exit: ExitStatus) => void>();
    const started: [string, string][] = [];
    const abort = new AbortController();

    beforeAll(async () => {
      runtime = await factory();
      void (async () => {
        for await (const event of runtime.events({ signal: abort.signal }) as AsyncIterable<RuntimeEvent>) {
          exits.set(`${event.hostId}/${event.jobId}`, event.exit);
          waiters.get(`${event.hostId}/${event.jobId}`)?.(event.exit);
        }
      })();
    });

    afterAll(async () => {
      for (const [host, id] of started) await runtime.remove(host, id).catch(() => {});
      abort.abort();
      await runtime.close();
    });

    function exitOf(hostId: string, jobId: string, timeoutMs = 20_000): Promise<ExitStatus> {
      const key = `${hostId}/${jobId}`;
      const seen = exits.get(key);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no exit event for ${key} in ${timeoutMs} ms`)), timeoutMs);
        waiters.set(key, (exit) => {
          clearTimeout(timer);
          resolve(exit);
        });
      });
    }

    async function start(job: Partial<JobSpec> & { cmd: string[] }, hostId = hostA, withPort = false): Promise<RuntimeJobSpec> {
      const id = job.id ?? `j-${randomUUID().slice(0, 8)}`;
      const ports = withPort ? [{ port: 8080, proto: 'tcp' as const, hostPort: await freePort(bindAddr) }] : [];
      const spec: RuntimeJobSpec = {
        hostId,
        bindAddr,
        ports,
        job: { app: 'conformance', release: 'r1', type: 'web', env: { FLYNN_JOB_ID: id, PORT: String(runtime.mapsPorts || !ports[0] ? 8080 : ports[0].hostPort) }, ports: ports.map(({ port, proto }) => ({ port, proto })), limits: {}, meta: {}, ...job, id },
      };
      started.push([hostId, id]);
      const got = await runtime.start(spec);
      expect(got.spec.job.id).toBe(id);
      return spec;
    }

    async function collect(lines: AsyncIterable<LogLine>): Promise<LogLine[]> {
      const out: LogLine[] = [];
      for await (const line of lines) out.push(line);
      return out;
    }

    it('serves on the bound host port, marks stdout and stderr lines, and stops with SIGTERM', async () => {
      const spec = await start({ cmd: HTTP_SERVER_CMD }, hostA, true);
      const port = spec.ports[0]?.hostPort;
      expect(await fetchWhenUp(`http://${bindAddr}:${port}/`)).toBe(`hello from ${spec.job.id}`);
      // stdout and stderr are separate pipes: the stderr line may land a moment after the answer.
      await waitForLine(runtime, hostA, spec.job.id, 'this goes to stderr');
      const lines = await collect(runtime.logs(hostA, spec.job.id));
      expect(lines.some((l) => l.stream === 'stdout' && l.line.startsWith('listening on'))).toBe(true);
      expect(lines).toContainEqual(expect.objectContaining({ stream: 'stderr', line: 'this goes to stderr' }));
      expect(Number.isNaN(Date.parse(lines[0]?.time ?? ''))).toBe(false);
      expect((await runtime.inspect(hostA, spec.job.id))?.running).toBe(true);
      await runtime.stop(hostA, spec.job.id, { graceMs: 5000 });
      const exit = await exitOf(hostA, spec.job.id);
      expect(exit).toEqual({ code: 0, reason: 'exit' });
      const after = await runtime.inspect(hostA, spec.job.id);
      expect(after?.running).toBe(false);
      expect(after?.exit?.code).toBe(0);
      expect((await collect(runtime.logs(hostA, spec.job.id))).map((l) => l.line)).toContain('got SIGTERM');
    });

    it('reports a crash with its exit code', async () => {
      const spec = await start({ cmd: crashCmd(3) });
      expect(await exitOf(hostA, spec.job.id)).toEqual({ code: 3, reason: 'exit' });
    });

    it('kills a job that goes over its memory limit and reports oom', async () => {
      const spec = await start({ cmd: MEMORY_HOG_CMD, limits: { memoryBytes: 96 * 1024 * 1024 } });
      const exit = await exitOf(hostA, spec.job.id);
      expect(exit.reason).toBe('oom');
      expect(exit.code).toBe(137);
    });

    it('sends SIGKILL when a job ignores SIGTERM for the grace period', async () => {
      const spec = await start({ cmd: STUBBORN_CMD });
      await waitForLine(runtime, hostA, spec.job.id, 'started');
      const t0 = Date.now();
      await runtime.stop(hostA, spec.job.id, { graceMs: 400 });
      expect(Date.now() - t0).toBeGreaterThanOrEqual(350);
      expect(await exitOf(hostA, spec.job.id)).toEqual({ code: 137, reason: 'killed' });
    });

    it('delivers a signal to the job', async () => {
      const spec = await start({ cmd: HTTP_SERVER_CMD }, hostA, true);
      await waitForLine(runtime, hostA, spec.job.id, `listening on`);
      await runtime.signal(hostA, spec.job.id, 'SIGUSR1');
      await waitForLine(runtime, hostA, spec.job.id, 'got SIGUSR1');
      await runtime.stop(hostA, spec.job.id, { graceMs: 2000 });
    });

    it('follows logs until the job ends, and tails the last lines', async () => {
      const spec = await start({ cmd: chattyCmd(3, 600) });
      const followed = await collect(runtime.logs(hostA, spec.job.id, { follow: true }));
      expect(followed.map((l) => l.line)).toEqual(['line 1', 'line 2', 'line 3', 'line 4', 'line 5', 'line 6']);
      await exitOf(hostA, spec.job.id);
      expect((await collect(runtime.logs(hostA, spec.job.id, { tail: 2 }))).map((l) => l.line)).toEqual(['line 5', 'line 6']);
    });

    it('lists only the jobs of the host id asked for, and forgets removed jobs', async () => {
      const a = await start({ cmd: STUBBORN_CMD }, hostA);
      const b = await start({ cmd: STUBBORN_CMD }, hostB);
      const listA = (await runtime.list(hostA)).map((j) => j.spec.job.id);
      const listB = (await runtime.list(hostB)).map((j) => j.spec.job.id);
      expect(listA).toContain(a.job.id);
      expect(listA).not.toContain(b.job.id);
      expect(listB).toEqual([b.job.id]);
      expect((await runtime.recover(hostB)).map((j) => j.spec.job.id)).toEqual([b.job.id]);
      await runtime.stop(hostB, b.job.id, { graceMs: 100 });
      await runtime.remove(hostB, b.job.id);
      expect(await runtime.list(hostB)).toEqual([]);
      expect(await runtime.inspect(hostB, b.job.id)).toBeUndefined();
      await runtime.stop(hostA, a.job.id, { graceMs: 100 });
    });
  });
}

async function waitForLine(runtime: Runtime, hostId: string, jobId: string, text: string, timeoutMs = 15_000): Promise<void> {
  await until((signal) => runtime.logs(hostId, jobId, { follow: true, signal }), (line) => line.line.includes(text), { timeoutMs, what: `job ${jobId} printing ${JSON.stringify(text)}` });
}
