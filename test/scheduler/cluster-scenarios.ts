/** The real-cluster scenarios of the scheduler, run once per runtime (cluster-process / cluster-docker). */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ensureRuntimeImage } from '../../src/host/runtime-image.js';
import type { SchedulerEvent } from '../../src/scheduler/types.js';
import { HOST_TTL_MS, HELLO_CMD, RealCluster, orphanPids, until, type RuntimeName } from './support-cluster.js';

const GiB = 1024 ** 3;

/** Everything in one cluster, in order: each scenario starts from the state the previous one left. */
export function clusterScenarios(runtime: RuntimeName): void {
  let c: RealCluster;
  const app = () => c.app('shop');

  beforeAll(async () => {
    if (runtime === 'docker') await ensureRuntimeImage(); // built once per engine; the agents would each build it otherwise
    c = new RealCluster(runtime);
    await Promise.all([
      c.addAgent('h1', '127.0.0.2', { memoryBytes: 2 * GiB }),
      c.addAgent('h2', '127.0.0.3', { memoryBytes: 2 * GiB }),
      c.addAgent('h3', '127.0.0.4', { memoryBytes: 2 * GiB }),
    ]);
    const a = await c.addScheduler('a');
    await until('scheduler a to lead', () => a?.leading, 10_000);
    await c.addScheduler('b');
  }, 240_000);
  afterAll(() => c?.close(), 60_000);

  it('scales web to 6 as 2 jobs per host, every one answering at its published address', async () => {
    c.put(c.webFormation(app(), 6));
    const ids = await c.allAnswering(app(), 6, 30_000);
    expect(ids).toHaveLength(6);
    expect(await c.upPerHost(app())).toEqual({ h1: 2, h2: 2, h3: 2 });
  }, 40_000);

  it('scales web down to 2: 4 are stopped, the 2 left are untouched', async () => {
    const before = new Map((await c.liveJobs(app(), 'web')).map((j) => [j.id, j]));
    c.scale(app(), { web: 2 });
    const left = await c.allAnswering(app(), 2);
    for (const id of left) expect(before.get(id)?.state).toBe('up'); // same jobs, not new ones
    await until('2 instances published', async () => (await c.discovery.instances(`${app()}-web`)).length === 2, 5000);
    const stopped = c.leader()?.events.filter((e) => e.event.type === 'stopped') ?? [];
    expect(stopped).toHaveLength(4);
    c.scale(app(), { web: 6 });
    await c.allAnswering(app(), 6, 30_000);
    expect(await c.upPerHost(app())).toEqual({ h1: 2, h2: 2, h3: 2 });
  }, 60_000);

  it('restarts the jobs of a SIGKILLed host agent on the other hosts, and ignores the orphans it left', async () => {
    const leader = c.leader();
    expect(leader).toBeDefined();
    const t0 = Date.now();
    c.killAgent('h2');
    await until('6 up on h1 and h3', async () => {
      const per = await c.upPerHost(app());
      return per.h1 === 3 && per.h3 === 3;
    }, 15_000);
    await c.allAnswering(app(), 6);
    const tookMs = Date.now() - t0;
    // The time it takes is measured by `npm run bench -- scheduler` (real: host SIGKILL → all answering again).
    console.log(`[${runtime}] host SIGKILL → 6 jobs answering again in ${tookMs} ms (host TTL ${HOST_TTL_MS} ms)`);
    const lost = leader?.events.find((e) => e.event.type === 'host-lost')?.event as Extract<SchedulerEvent, { type: 'host-lost' }> | undefined;
    expect(lost?.hostId).toBe(c.agents.get('h2')?.id);
    expect(lost?.jobIds).toHaveLength(2);
    // the killed agent's jobs may still run (orphans), but the scheduler counts only the live hosts' jobs
    const view = await leader!.view();
    expect(view.hosts.map((h) => h.id).sort()).toEqual([c.agents.get('h1')?.id, c.agents.get('h3')?.id].sort());
    // Once settled: a replacement placed unevenly is moved by a rebalance, whose stopping job is listed until it is gone.
    const web = await until('the view to hold the 6 web jobs', async () => {
      const p = (await leader!.view()).formations.find((f) => f.app === app())?.processes.find((x) => x.type === 'web');
      return p?.jobs.length === 6 ? p : undefined;
    }, 10_000);
    expect(web?.jobs.every((j) => j.hostId !== c.agents.get('h2')?.id)).toBe(true);
    if (runtime === 'process') expect((await orphanPids(c.run)).length).toBeGreaterThanOrEqual(8); // 6 live + 2 orphans
    // the orphans' service registrations expire with the dead agent's lease
    await until('only the 6 live jobs published', async () => (await c.discovery.instances(`${app()}-web`)).length === 6, HOST_TTL_MS + 5000);
  }, 40_000);

  it('replaces a SIGKILLed leading scheduler: the other leads, starts no duplicates, and scales', async () => {
    const [first, second] = c.schedulers;
    expect(first?.leading).toBe(true);
    const before = (await c.liveJobs(app(), 'web')).map((j) => j.id).sort();
    const t0 = Date.now();
    first?.proc.kill('SIGKILL');
    await until('scheduler b to lead', () => second?.leading, 10_000);
    console.log(`[${runtime}] leader SIGKILL → the other leads in ${Date.now() - t0} ms (leader TTL 2000 ms)`);
    // Two full passes of the new leader: a duplicate it would start is placed by then.
    await second!.settle();
    await second!.settle();
    expect((await c.liveJobs(app(), 'web')).map((j) => j.id).sort()).toEqual(before);
    expect(second?.events.some((e) => e.event.type === 'placed')).toBe(false);
    c.scale(app(), { web: 8 });
    const ids = await c.allAnswering(app(), 8, 30_000);
    expect(ids.filter((id) => before.includes(id))).toHaveLength(6);
    expect(await c.upPerHost(app())).toEqual({ h1: 4, h3: 4 });
  }, 60_000);

  it('restarts a crashing type with growing delays, and never restarts a crashed one-off', async () => {
    const s = c.leader()!;
    const crashApp = c.app('crash');
    const crashCmd = ['node', '-e', 'setTimeout(() => process.exit(3), 150)'];
    c.put({ app: crashApp, release: 'v1', processes: { worker: 1 }, spec: { worker: { image: 'flynn-ts/runtime:latest', cmd: crashCmd } } });
    const crashes = () => s.events.filter((e) => e.event.type === 'crashed' && e.event.job.app === crashApp && !e.event.job.oneOff);
    await until('4 crashes', () => crashes().length >= 4, 20_000);
    const delays = crashes().map((e) => (e.event as Extract<SchedulerEvent, { type: 'crashed' }>).restartInMs);
    expect(delays.slice(0, 4)).toEqual([0, 300, 600, 1200]);
    const restarts = s.events.filter((e) => e.event.type === 'restarted' && e.event.job.app === crashApp);
    const crashAt = crashes().map((e) => e.at);
    const gaps = restarts.slice(1, 3).map((r, i) => r.at - (crashAt[i + 1] as number));
    expect(gaps[0]).toBeGreaterThanOrEqual(250);
    expect(gaps[1]).toBeGreaterThanOrEqual(550);
    c.scale(crashApp, { worker: 0 });

    s.send({ op: 'run', request: { app: crashApp, release: 'v1', cmd: crashCmd, image: 'flynn-ts/runtime:latest' } });
    await until('the one-off crashed', () => s.events.some((e) => e.event.type === 'crashed' && e.event.job.oneOff), 10_000);
    const oneOff = s.events.find((e) => e.event.type === 'crashed' && e.event.job.oneOff)?.event as Extract<SchedulerEvent, { type: 'crashed' }>;
    expect(oneOff.restartInMs).toBeNull();
    // A full pass after the crash: a restart it would owe is started by then (a first crash restarts at once).
    await s.settle();
    await s.settle();
    expect(s.events.some((e) => e.event.type === 'restarted' && e.event.previousJobId === oneOff.job.id)).toBe(false);
  }, 40_000);

  it('blocks what fits no host, places it when a fitting host joins, and gives the new host its omni jobs', async () => {
    const s = c.leader()!;
    const extra = c.app('extra');
    const spec = { image: 'flynn-ts/runtime:latest', cmd: HELLO_CMD, ports: [{ port: 8080 }] };
    c.put({
      app: extra,
      release: 'v1',
      processes: { fast: 1, fat: 1, ship: 1 },
      omni: ['ship'],
      tags: { fast: { disk: 'ssd' } },
      memory: { fat: 3 * GiB },
      spec: { fast: spec, fat: spec, ship: spec },
    });
    await until('omni on the 2 hosts', async () => {
      const per = await c.upPerHost(extra, 'ship');
      return per.h1 === 1 && per.h3 === 1;
    });
    const blocked = (type: string) => s.events.find((e) => e.event.type === 'blocked' && e.event.app === extra && e.event.processType === type)?.event;
    await until('both blocked', () => blocked('fast') && blocked('fat'), 5000);
    expect(blocked('fast')).toMatchObject({ reason: 'tags', count: 1 });
    expect(blocked('fat')).toMatchObject({ reason: 'capacity', count: 1 });
    expect(await c.liveJobs(extra, 'fast')).toHaveLength(0);

    await c.addAgent('h4', '127.0.0.5', { tags: { disk: 'ssd' }, memoryBytes: 4 * GiB });
    await until('fast, fat and ship on h4', async () => {
      const [fast, fat, ship] = await Promise.all([c.upPerHost(extra, 'fast'), c.upPerHost(extra, 'fat'), c.upPerHost(extra, 'ship')]);
      return fast.h4 === 1 && fat.h4 === 1 && ship.h1 === 1 && ship.h3 === 1 && ship.h4 === 1;
    }, 15_000);
    expect(await c.liveJobs(extra)).toHaveLength(5);
  }, 40_000);

  it('rebalances running web jobs onto the joined host without downtime: 4+4 becomes 3+3+2', async () => {
    const s = c.leader()!;
    await until('web 3+3+2', async () => {
      const per = await c.upPerHost(app());
      return per.h1 === 3 && per.h3 === 3 && per.h4 === 2 && (await c.liveJobs(app(), 'web')).length === 8;
    }, 20_000);
    await c.allAnswering(app(), 8);
    const moves = s.events.filter((e) => e.event.type === 'rebalanced' && e.event.app === app()).map((e) => e.event as Extract<SchedulerEvent, { type: 'rebalanced' }>);
    expect(moves.map((m) => m.toHostId)).toEqual([c.agents.get('h4')?.id, c.agents.get('h4')?.id]);
    // every job stopped for a move was stopped only after its replacement was up
    for (const m of moves) {
      const started = s.events.findIndex((e) => e.event.type === 'started' && e.event.job.id === m.startedJobId);
      const stopped = s.events.findIndex((e) => e.event.type === 'stopped' && e.event.job.id === m.stoppedJobId);
      expect(started).toBeGreaterThanOrEqual(0);
      expect(started).toBeLessThan(stopped);
    }
  }, 30_000);
}
