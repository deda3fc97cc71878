import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestCluster, type TestCluster } from '../../src/bootstrap/index.js';
import type { LogLine } from '../../src/controller/types.js';
import { until } from '../../src/common/until.js';
import { ChangeFlag } from '../../src/common/watch.js';

/** Collects a follow's lines; `waitFor` resolves once a predicate holds over them, looking again at each new line. */
function collect(stream: AsyncIterable<LogLine>) {
  const lines: LogLine[] = [];
  let ended = false;
  const changed = new ChangeFlag();
  const done = (async () => {
    try {
      for await (const l of stream) {
        lines.push(l);
        changed.notify();
      }
    } catch {
      // aborted
    }
    ended = true;
    changed.notify();
  })();
  const waitFor = async (what: string, ok: (ls: LogLine[]) => boolean, timeoutMs = 30_000) => {
    const deadline = AbortSignal.timeout(timeoutMs);
    while (!ok(lines)) {
      if (ended) throw new Error(`the follow ended before ${what}`);
      await changed.wait(deadline).catch(() => {
        throw new Error(`timed out waiting for ${what}; got ${lines.map((l) => `${l.jobId.slice(0, 8)} ${l.msg}`).join(' | ')}`);
      });
    }
  };
  return { lines, waitFor, done, isEnded: () => ended };
}

describe('flynn log -f follows the app across scale and deploys', () => {
  let cluster: TestCluster;
  const app = `follow-${randomUUID().slice(0, 6)}`;
  // Each job says which release it runs and that it listens, a few times, interleaved across jobs.
  const web = { cmd: ['sh', '-c', 'echo "listening on job $FLYNN_JOB_ID in $FLYNN_RELEASE"; for i in 1 2 3 4; do sleep 0.03; echo "web tick $i"; done; exec sleep 120'] };
  const worker = { cmd: ['sh', '-c', 'for i in 1 2 3 4; do echo "worker tick $i"; sleep 0.03; done; exec sleep 120'] };

  beforeAll(async () => {
    cluster = await createTestCluster({ runtime: 'process' });
    await cluster.client.createApp({ name: app });
  }, 60_000);

  afterAll(async () => {
    await cluster?.close();
  }, 60_000);

  it('sorts the backlog by time, attaches the jobs of a scale up and of a new release, and keeps going until the client leaves', async () => {
    const c = cluster.client;
    const release = await c.createRelease(app, { processes: { echo: web, worker } });
    const first = await c.deploy(app, release.id);
    expect((await c.waitForDeployment(app, first.id, { timeoutMs: 60_000 })).status).toBe('complete');
    await c.scale(app, { echo: 1, worker: 1 });
    // Let both jobs write their interleaved backlog (5 web lines, 4 worker lines): wait on a follow for the 9th.
    let seen = 0;
    await until(c.logs(app, { follow: true }), () => ++seen === 9, { timeoutMs: 30_000, what: 'the 9 lines of the backlog' });
    const before = async () => {
      const got: LogLine[] = [];
      for await (const l of c.logs(app)) got.push(l);
      return got;
    };
    const backlogCount = (await before()).length;
    expect(backlogCount).toBe(9);

    const follow = new AbortController();
    const f = collect(c.logs(app, { follow: true, signal: follow.signal }));
    const workers = collect(c.logs(app, { follow: true, type: 'worker', signal: follow.signal }));
    try {
      await f.waitFor('the backlog', (ls) => ls.length >= backlogCount);
      const backlog = f.lines.slice(0, backlogCount);
      expect(backlog.map((l) => l.time)).toEqual(backlog.map((l) => l.time).sort());
      expect(new Set(backlog.map((l) => l.jobId)).size).toBe(2);

      // Scale web 1 → 3: the two new jobs' first lines arrive on the same follow.
      const oldJobs = new Set((await c.listJobs(app)).map((j) => j.id));
      await c.scale(app, { echo: 3, worker: 1 });
      const listening = (ls: LogLine[], releaseId: string) => new Set(ls.filter((l) => l.msg.startsWith('listening on') && l.msg.endsWith(releaseId)).map((l) => l.jobId));
      await f.waitFor('the listening lines of 2 new web jobs', (ls) => [...listening(ls, release.id)].filter((id) => !oldJobs.has(id)).length === 2);
      const scaled = await c.listJobs(app);
      for (const id of [...listening(f.lines, release.id)].filter((id) => !oldJobs.has(id))) expect(scaled.map((j) => j.id)).toContain(id);

      // A new release (env set): its 3 web jobs show up on the same follow, which has not ended.
      const change = await c.setEnv(app, { FOO: 'x' });
      const next = change.release?.id ?? '';
      expect(next).not.toBe('');
      if (change.deployment) expect((await c.waitForDeployment(app, change.deployment.id, { timeoutMs: 60_000 })).status).toBe('complete');
      await f.waitFor('the listening lines of the new release', (ls) => listening(ls, next).size === 3);
      await f.waitFor('the new release worker', (ls) => ls.some((l) => l.msg === 'worker tick 4' && !oldJobs.has(l.jobId) && l.type === 'worker'));
      // A follow of one type attaches only the new jobs of that type.
      await workers.waitFor('the new release worker (type filter)', (ls) => ls.some((l) => l.msg === 'worker tick 4' && !oldJobs.has(l.jobId)));
      expect(workers.lines.every((l) => l.type === 'worker')).toBe(true);
      // No line is delivered twice.
      const keys = f.lines.map((l) => `${l.jobId} ${l.time} ${l.msg}`);
      expect(new Set(keys).size).toBe(keys.length);
      // Still attached after the deploy: a worker scaled up now shows up on it too.
      const known = new Set(f.lines.map((l) => l.jobId));
      await c.scale(app, { echo: 3, worker: 2 });
      await f.waitFor('a worker scaled up after the deploy', (ls) => ls.some((l) => l.type === 'worker' && l.msg === 'worker tick 1' && !known.has(l.jobId)));
      expect(f.isEnded()).toBe(false);
    } finally {
      follow.abort();
    }
    await Promise.all([f.done, workers.done]);
    expect(f.isEnded() && workers.isEnded()).toBe(true);
  }, 120_000);
});
