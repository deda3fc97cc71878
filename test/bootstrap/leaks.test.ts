import { getEventListeners } from 'node:events';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { childSignal } from '../../src/common/lifecycle.js';
import { createTestCluster, SchedulerJobRunner, type TestCluster } from '../../src/bootstrap/index.js';
import { HostClient } from '../../src/host/client.js';
import { until } from './deploy-scenario.js';

const abortListeners = (signal: AbortSignal) => getEventListeners(signal, 'abort').length;

describe('childSignal', () => {
  it('aborts every child with the reason of the parent, which carries one listener for all of them', () => {
    const parent = new AbortController();
    const children = Array.from({ length: 20 }, () => childSignal(parent.signal));
    expect(abortListeners(parent.signal)).toBe(1);
    parent.abort(new Error('gone'));
    for (const c of children) expect((c.signal.reason as Error).message).toBe('gone');
  });

  it('leaves no listener on the parent once every child is released, and is born aborted under an aborted parent', () => {
    const parent = new AbortController();
    const children = Array.from({ length: 20 }, () => childSignal(parent.signal));
    for (const c of children) c.release();
    children[0]?.release();
    expect(abortListeners(parent.signal)).toBe(0);
    const again = childSignal(parent.signal);
    expect(abortListeners(parent.signal)).toBe(1);
    parent.abort();
    expect(again.signal.aborted).toBe(true);
    expect(childSignal(parent.signal).signal.aborted).toBe(true);
  });
});

describe('abort listeners across many deploys, requests and log reads', () => {
  const warnings: Error[] = [];
  const onWarning = (w: Error) => {
    if (w.name === 'MaxListenersExceededWarning') warnings.push(w);
  };
  let cluster: TestCluster;
  const app = `leak-${randomUUID().slice(0, 6)}`;

  beforeAll(async () => {
    process.on('warning', onWarning);
    cluster = await createTestCluster();
    await cluster.client.createApp({ name: app });
  }, 60_000);

  afterAll(async () => {
    process.off('warning', onWarning);
    await cluster?.close();
  }, 60_000);

  it('shares one signal among 30 concurrent host API requests and log follows without piling listeners on it', async () => {
    const host = cluster.hosts[0];
    if (!host) throw new Error('no host');
    const client = new HostClient({ url: host.url, key: cluster.hostAgentKey });
    const shared = new AbortController();
    try {
      const job = await client.createJob({ id: `leak-${randomUUID().slice(0, 8)}`, app, release: 'r0', type: 'run', cmd: ['sh', '-c', 'echo ready; exec sleep 30'] });
      const follows = Array.from({ length: 15 }, async () => {
        const lines: string[] = [];
        for await (const l of client.logs(job.id, { follow: true, signal: shared.signal })) lines.push(l.line);
        return lines;
      });
      await Promise.all(Array.from({ length: 15 }, () => client.getJob(job.id, { signal: shared.signal })));
      expect(abortListeners(shared.signal)).toBeLessThanOrEqual(1);
      await client.stopJob(job.id, { graceMs: 200 });
      for (const lines of await Promise.all(follows)) expect(lines).toContain('ready');
      expect(abortListeners(shared.signal)).toBe(0);
    } finally {
      shared.abort();
      await client.close();
    }
  }, 30_000);

  it('runs 6 deploys of 12 jobs each, with log reads and follows, and Node warns of no abort listener leak', async () => {
    const c = cluster.client;
    for (let i = 0; i < 6; i++) {
      const release = await c.createRelease(app, { env: { N: String(i) }, processes: { worker: { cmd: ['sh', '-c', 'echo "worker $N"; exec sleep 60'] } } });
      const deployment = await c.deploy(app, release.id);
      expect((await c.waitForDeployment(app, deployment.id, { timeoutMs: 60_000 })).status).toBe('complete');
      if (i === 0) {
        await c.scale(app, { worker: 12 });
        // The scale is recorded at once; its jobs start after (flynn scale waits the same way).
        await until('12 workers up', async () => ((await c.listJobs(app)).filter((j) => j.state === 'up').length === 12 ? true : undefined));
      }
      const seen: string[] = [];
      for await (const l of c.logs(app, { lines: 100 })) seen.push(l.msg);
      const follow = new AbortController();
      const timer = setTimeout(() => follow.abort(), 300);
      try {
        for await (const l of c.logs(app, { follow: true, signal: follow.signal })) seen.push(l.msg);
      } catch {
        // aborted
      } finally {
        clearTimeout(timer);
      }
      expect(seen.length).toBeGreaterThan(0);
    }
    await cluster.scheduler.settle();
    expect(warnings.map((w) => w.message)).toEqual([]);
  }, 120_000);

  it('reads the logs of its 12 jobs 12 times with one caller signal and leaves no listener on it', async () => {
    const jobs = new SchedulerJobRunner({ scheduler: cluster.scheduler, hostKey: cluster.hostAgentKey });
    const caller = new AbortController();
    try {
      const appId = (await cluster.client.getApp(app)).id;
      for (let i = 0; i < 12; i++) {
        const got: string[] = [];
        // Every line: the jobs that ended before this runner (older releases') are in the app's log too.
        for await (const line of await jobs.logs(appId, { lines: 1000, signal: caller.signal })) got.push(line.msg);
        expect(got).toContain('worker 5');
      }
      expect(abortListeners(caller.signal)).toBe(0);
    } finally {
      await jobs.close();
    }
  });
});
