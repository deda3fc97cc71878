/**
 * What the platform remembers of jobs that ended before it restarted (the controller's store kept
 * on disk, the host agent's ended jobs in its state dir): plain `flynn ps` lists a job that crashed
 * before the restart as it did before, and a crash loop's backoff goes on where it was instead of
 * restarting the job at once. Real host agent on the process runtime, real SQLite store.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startPlatform, type Platform } from '../../src/bootstrap/platform.js';
import { componentKey } from '../../src/common/http/key-auth.js';
import { until } from '../../src/common/until.js';
import { SqliteStore } from '../../src/controller/sqlite-store.js';
import type { Job } from '../../src/controller/types.js';
import { MemoryDiscovery } from '../../src/discovery/memory-backend.js';
import { HOST_AGENT_DEFAULTS } from '../../src/host/agent-config.js';
import { ProcessRuntime } from '../../src/host/process-runtime.js';
import { startHostAgent, type HostAgentHandle } from '../../src/host/start.js';
import { TERMINAL_STATES, type JobEvent } from '../../src/host/types.js';
import { BACKOFF_DEFAULTS, restartDelay } from '../../src/scheduler/backoff.js';
import { JOB_LABELS } from '../../src/scheduler/host-client.js';
import type { SchedulerEvent } from '../../src/scheduler/types.js';
import { waitFor } from '../host/agent-scenarios.js';

const KEY = 'platform-restart-memory-key';
const HOST = '127.0.0.1';

/** One host agent and a platform on a data dir; both can be restarted on it. */
class Rig {
  host?: { handle: HostAgentHandle; runtime: ProcessRuntime };
  platform?: Platform;
  private store?: SqliteStore;
  private readonly discovery = new MemoryDiscovery();

  private constructor(
    readonly dir: string,
    private readonly retainEndedMs: number,
  ) {}

  static async start(retainEndedMs: number = HOST_AGENT_DEFAULTS.retainEndedMs): Promise<Rig> {
    const rig = new Rig(await mkdtemp(join(tmpdir(), 'flynn-ts-restart-memory-')), retainEndedMs);
    await rig.startHost();
    await rig.startPlatform();
    return rig;
  }

  get agent(): HostAgentHandle['agent'] {
    if (!this.host) throw new Error('no host agent');
    return this.host.handle.agent;
  }

  get client(): Platform['client'] {
    if (!this.platform) throw new Error('no platform');
    return this.platform.client;
  }

  async startHost(): Promise<void> {
    const runtime = new ProcessRuntime({ baseDir: join(this.dir, 'jobs') });
    const handle = await startHostAgent({ key: componentKey(KEY, 'host'), id: 'h1', advertiseAddr: HOST, discovery: this.discovery, runtime, stateDir: join(this.dir, 'host-state'), retainEndedMs: this.retainEndedMs, stopGraceMs: 500 });
    this.host = { handle, runtime };
  }

  async stopHost(): Promise<void> {
    await this.host?.handle.close();
    await this.host?.runtime.close();
    this.host = undefined;
  }

  /** The platform on the data dir's store (as `npm start` opens `controller.sqlite` again). */
  async startPlatform(): Promise<void> {
    this.store = new SqliteStore({ path: join(this.dir, 'controller.sqlite') });
    this.platform = await startPlatform({ discovery: this.discovery, store: this.store, key: KEY, dataDir: join(this.dir, 'platform'), build: 'process', readyHosts: 1, host: HOST, ports: { controller: 0, router: 0, git: 0, shelf: 0 }, acme: false });
  }

  async stopPlatform(): Promise<void> {
    await this.platform?.close();
    await this.store?.close();
    this.platform = undefined;
    this.store = undefined;
  }

  /** Stop the app's jobs (process jobs outlive their agent) and everything else. */
  async close(): Promise<void> {
    await this.stopPlatform();
    if (!this.host) await this.startHost();
    for (const j of this.agent.listJobs()) if (!TERMINAL_STATES.has(j.state)) await this.agent.stopJob(j.id, { graceMs: 500 }).catch(() => {});
    await this.stopHost();
    await this.discovery.close();
    await rm(this.dir, { recursive: true, force: true });
  }
}

const view = (jobs: Job[]) => jobs.map((j) => `${j.id} ${j.type} ${j.state}`).sort();

describe('a platform restart keeps what it knew of ended jobs', () => {
  let rig: Rig | undefined;
  afterEach(async () => {
    await rig?.close();
    rig = undefined;
  });

  it('plain ps lists a job that crashed before the restart as before it, and app logs still show its output', async () => {
    rig = await Rig.start();
    const app = 'crash-once';
    const marker = join(rig.dir, 'crashed-once');
    // The first web job crashes; the scheduler restarts it at once and the second one serves.
    const web = ['sh', '-c', `if [ ! -e ${marker} ]; then touch ${marker}; echo boom >&2; exit 1; fi; exec node -e "require('http').createServer((q, s) => s.end('ok')).listen(Number(process.env.PORT))"`];
    await rig.client.createApp({ name: app });
    const release = await rig.client.createRelease(app, { processes: { web: { cmd: web } } });
    await rig.client.putFormation(app, release.id, { web: 1 });
    const before = await until(
      (signal) => rig!.client.watchJobs(app, { signal }),
      (jobs) => jobs.some((j) => j.state === 'crashed') && jobs.some((j) => j.state === 'up'),
      { timeoutMs: 30_000 },
    );
    expect(view(before)).toHaveLength(2);
    const crashed = before.find((j) => j.state === 'crashed')!;
    const logLines = async () => {
      const out: string[] = [];
      for await (const l of rig!.client.logs(app)) out.push(`${l.jobId} ${l.stream}:${l.msg}`);
      return out;
    };
    expect(await logLines()).toContain(`${crashed.id} stderr:boom`);

    // `npm start` again: the platform and its host agent, on the same data dir and store.
    await rig.stopPlatform();
    await rig.stopHost();
    await rig.startHost();
    await rig.startPlatform();
    // The adopted web job counts as up again once the restarted agent has registered its service.
    const after = await until(
      (signal) => rig!.client.watchJobs(app, { signal }),
      (jobs) => !jobs.some((j) => j.state === 'starting'),
      { timeoutMs: 30_000 },
    );
    expect(view(after)).toEqual(view(before));
    expect(await logLines()).toContain(`${crashed.id} stderr:boom`);
  }, 90_000);

  it('a new leader after a restart honours the crash backoff it had reached (no burst of restarts)', async () => {
    // The host forgets an ended job 200 ms after its end: across the restart only the controller's store remembers the crashes.
    rig = await Rig.start(200);
    const app = 'crash-loop';
    const events: JobEvent[] = [];
    const hostEvents = new AbortController();
    void (async () => {
      for await (const e of rig!.agent.events({ signal: hostEvents.signal })) events.push(e);
    })();
    await rig.client.createApp({ name: app });
    const release = await rig.client.createRelease(app, { processes: { web: { cmd: ['sh', '-c', 'exit 1'] } } });
    // 3 restarts at once, then 1 s, 2 s, 4 s: the crash of the 7th restart waits 8 s.
    const attempt = BACKOFF_DEFAULTS.immediateRestarts + 4;
    const delay = restartDelay(attempt, BACKOFF_DEFAULTS);
    const crashes = rig.platform!.scheduler.events({ types: ['crashed'] });
    await rig.client.putFormation(app, release.id, { web: 1 });
    const held = (await until(crashes, (e) => e.type === 'crashed' && e.restartInMs === delay, { timeoutMs: 60_000 })) as Extract<SchedulerEvent, { type: 'crashed' }>;
    const endedAt = Date.parse((await waitFor('the crash on the host', () => events.find((e) => e.job.id === held.job.id && e.job.state === 'crashed')))!.job.updatedAt);
    const seen = new Set(events.map((e) => e.job.id));

    await rig.stopPlatform();
    await waitFor('the host to forget the crashed job', () => (rig!.agent.listJobs().some((j) => j.id === held.job.id) ? undefined : true));
    await rig.startPlatform();
    // The next job is the owed restart number `attempt`, started once its delay has passed since the crash.
    const next = await waitFor('the next job', () => events.find((e) => !seen.has(e.job.id)), delay + 30_000);
    hostEvents.abort();
    expect(Date.parse(next.job.createdAt)).toBeGreaterThanOrEqual(endedAt + delay);
    expect(next.job.meta[JOB_LABELS.restarts]).toBe(String(attempt));
  }, 120_000);
});
