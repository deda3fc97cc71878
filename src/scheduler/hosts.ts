/**
 * The leader's picture of the cluster: hosts from the discovery watch of `flynn-host`, and the jobs
 * on each, read from the host's job list and kept current from its event stream.
 */
import type { Clock } from '../common/clock.js';
import type { Logger } from '../common/logger.js';
import type { Discovery } from '../discovery/discovery.js';
import type { Instance } from '../discovery/types.js';
import { HOST_SERVICE, hostInfoFromInstance, JOB_LABELS, type HostConnector, type HostInfo, type HostJob, type JobEvent, type SchedulerHost } from './host-client.js';
import type { JobState, ScheduledJob } from './types.js';

export interface TrackedHost {
  info: HostInfo;
  instanceId: string;
  client?: SchedulerHost;
  /** Its job list has been read (and its events are followed). */
  ready: boolean;
  /** Was ready once; its last known jobs still count while it reconnects. */
  listedOnce: boolean;
  since: number;
  /** When it last became ready (its list read after a (re)connect); undefined while not ready. */
  readyAt?: number;
  jobs: Map<string, ScheduledJob>;
  /** The scheduler's jobs its last job list showed as ended (with `endedAt`): a new leader's memory of recent crashes. */
  ended: ScheduledJob[];
  abort: AbortController;
}

export interface HostTrackerOptions {
  discovery: Discovery;
  connect: HostConnector;
  logger: Logger;
  /** Wait between attempts to reach a host whose list or event stream failed, ms. */
  retryMs: number;
  /** A job the scheduler asked for that a host's list still lacks after this long (ms) is taken as never started. */
  pendingGraceMs: number;
  /** When jobs were seen up and hosts ready; retry waits. */
  clock: Clock;
  onHostUp(host: TrackedHost): void;
  onHostLost(host: TrackedHost, jobs: ScheduledJob[]): void;
  /** A job changed state; `previous` is undefined for a job first seen in an event. */
  onJob(host: TrackedHost, job: ScheduledJob, previous: ScheduledJob | undefined): void;
  /** Something changed that may need a reconcile pass. */
  onChange(): void;
}

/** Rebuild a scheduler job from a host's job and its labels; undefined when it is not the scheduler's. */
export function scheduledJobFromHost(hostId: string, job: HostJob, now: number): ScheduledJob | undefined {
  const l = job.labels;
  const app = l[JOB_LABELS.app];
  const release = l[JOB_LABELS.release];
  const type = l[JOB_LABELS.type];
  if (!app || !release || !type) return undefined;
  const restarts = Number(l[JOB_LABELS.restarts] ?? 0);
  const createdAt = Number(l[JOB_LABELS.createdAt] ?? 0);
  const memory = job.memoryBytes ?? Number(l[JOB_LABELS.memory] ?? 0);
  const out: ScheduledJob = {
    id: job.id,
    hostId,
    app,
    release,
    type,
    state: job.state,
    oneOff: l[JOB_LABELS.oneOff] === 'true',
    restarts: Number.isFinite(restarts) ? restarts : 0,
    memoryBytes: Number.isFinite(memory) && memory > 0 ? memory : 0,
    createdAt: Number.isFinite(createdAt) ? createdAt : 0,
  };
  if (job.state === 'up') out.upAt = now;
  if (job.endedAt !== undefined && Number.isFinite(job.endedAt)) out.endedAt = job.endedAt;
  return out;
}

/** Order of a job's life, to tell an older report from a newer one. */
const STATE_RANK: Readonly<Record<JobState, number>> = { pending: 0, starting: 1, up: 2, stopping: 3, down: 4, crashed: 4, failed: 4 };

export class HostTracker {
  readonly hosts = new Map<string, TrackedHost>();
  private readonly abort = new AbortController();
  private firstCurrent: Promise<void>;
  private resolveFirst!: () => void;
  private watchTask: Promise<void> | undefined;
  /** True once discovery's current host set has been taken in. */
  known = false;
  private readonly hostTasks = new Set<Promise<void>>();

  constructor(private readonly o: HostTrackerOptions) {
    this.firstCurrent = new Promise((resolve) => (this.resolveFirst = resolve));
  }

  /** Start following; resolves once discovery's current host set is known (not yet listed). */
  async start(): Promise<void> {
    this.watchTask = this.follow();
    await this.firstCurrent;
  }

  /** Every job the scheduler knows of, on every host. */
  jobs(): ScheduledJob[] {
    return [...this.hosts.values()].flatMap((h) => [...h.jobs.values()]);
  }

  findJob(id: string): { host: TrackedHost; job: ScheduledJob } | undefined {
    for (const host of this.hosts.values()) {
      const job = host.jobs.get(id);
      if (job) return { host, job };
    }
    return undefined;
  }

  /** Read every ready host's job list again and take it as the truth (the periodic resync). */
  async relist(): Promise<void> {
    const signal = this.abort.signal;
    await Promise.all(
      [...this.hosts.values()].map(async (host) => {
        const client = host.client;
        if (!host.ready || !client) return;
        try {
          const list = await client.listJobs({ signal });
          if (this.hosts.get(host.info.id) === host && host.ready) this.replace(host, list);
        } catch (err) {
          if (!signal.aborted) this.o.logger.debug('relist failed', { hostId: host.info.id, error: (err as Error).message });
        }
      }),
    );
  }

  async close(): Promise<void> {
    this.abort.abort();
    // Each host's own signal ends its connection loop (see keepConnected).
    for (const host of this.hosts.values()) host.abort.abort();
    await this.watchTask;
    await Promise.all([...this.hostTasks]);
    await Promise.all([...this.hosts.values()].map((h) => h.client?.close().catch(() => {})));
  }

  private async follow(): Promise<void> {
    const signal = this.abort.signal;
    while (!signal.aborted) {
      try {
        const watch = this.o.discovery.watch(HOST_SERVICE, { signal });
        for await (const event of watch) {
          if (event.type === 'current') {
            const live = new Set(event.instances.map((i) => i.id));
            for (const host of [...this.hosts.values()]) if (!live.has(host.instanceId)) this.lose(host);
            for (const instance of event.instances) this.add(instance);
            this.known = true;
            this.resolveFirst();
            this.o.onChange();
          } else if (event.type === 'up' || event.type === 'update') this.add(event.instance);
          else if (event.type === 'down') {
            const host = [...this.hosts.values()].find((h) => h.instanceId === event.instance.id);
            if (host) this.lose(host);
          }
        }
      } catch (err) {
        if (!signal.aborted) this.o.logger.warn('host watch failed', { error: (err as Error).message });
      }
      if (signal.aborted) break;
      await this.o.clock.sleep(this.o.retryMs, signal).catch(() => {});
    }
    this.resolveFirst();
  }

  private add(instance: Instance): void {
    let info: HostInfo;
    try {
      info = hostInfoFromInstance(instance);
    } catch (err) {
      this.o.logger.warn('ignoring malformed host registration', { error: (err as Error).message });
      return;
    }
    const existing = this.hosts.get(info.id);
    if (existing && existing.instanceId === instance.id) {
      existing.info = info; // tags or capacity changed
      this.o.onChange();
      return;
    }
    if (existing) this.lose(existing); // re-registered: a restarted agent
    const host: TrackedHost = {
      info,
      instanceId: instance.id,
      ready: false,
      listedOnce: false,
      since: this.o.clock.now(),
      jobs: new Map(),
      ended: [],
      abort: new AbortController(),
    };
    this.hosts.set(info.id, host);
    this.o.onHostUp(host);
    const task = this.keepConnected(host, instance).finally(() => this.hostTasks.delete(task));
    this.hostTasks.add(task);
  }

  private lose(host: TrackedHost): void {
    if (this.hosts.get(host.info.id) !== host) return;
    this.hosts.delete(host.info.id);
    host.abort.abort();
    const jobs = [...host.jobs.values()];
    host.jobs.clear();
    void host.client?.close().catch(() => {});
    this.o.onHostLost(host, jobs);
    this.o.onChange();
  }

  /** Connect, follow events, read the job list; on failure wait and start over while the host is registered. */
  private async keepConnected(host: TrackedHost, instance: Instance): Promise<void> {
    // The host's own signal, aborted when it is lost and on close: not `AbortSignal.any` with the
    // tracker's signal, which (Node 20) keeps every such signal alive as long as the tracker lives.
    const signal = host.abort.signal;
    if (this.abort.signal.aborted) host.abort.abort();
    let failures = 0;
    while (!signal.aborted) {
      try {
        host.client ??= await this.o.connect(host.info, instance);
        const events = host.client.events({ signal })[Symbol.asyncIterator]();
        const buffered: JobEvent[] = [];
        let listed = false;
        const pump = (async () => {
          for (;;) {
            const next = await events.next();
            if (next.done) return;
            if (listed) this.apply(host, next.value.job);
            else buffered.push(next.value);
          }
        })();
        // Never left unobserved: when the list fails first, the stream's own failure must not go unhandled.
        pump.catch(() => {});
        let list: HostJob[];
        try {
          list = await host.client.listJobs({ signal });
        } catch (err) {
          void events.return?.()?.catch(() => {});
          throw err;
        }
        if (signal.aborted) break;
        this.replace(host, list);
        for (const e of buffered) this.apply(host, e.job);
        listed = true;
        host.ready = true;
        host.readyAt = this.o.clock.now();
        host.listedOnce = true;
        if (failures > 0) this.o.logger.info('host reachable again', { hostId: host.info.id });
        failures = 0;
        this.o.onChange();
        await pump;
      } catch (err) {
        if (!signal.aborted) {
          const log = failures++ === 0 ? this.o.logger.warn : this.o.logger.debug;
          log.call(this.o.logger, 'lost contact with host', { hostId: host.info.id, error: (err as Error).message, attempt: failures });
        }
      }
      if (signal.aborted) break;
      host.ready = false;
      delete host.readyAt;
      this.o.onChange();
      await this.o.clock.sleep(this.o.retryMs, signal).catch(() => {});
    }
  }

  /** Take a fresh job list as the truth, keeping what the scheduler knows that the list cannot say. */
  private replace(host: TrackedHost, list: HostJob[]): void {
    const seen = new Set<string>();
    const ended: ScheduledJob[] = [];
    for (const hj of list) {
      const job = scheduledJobFromHost(host.info.id, hj, this.o.clock.now());
      if (!job) continue;
      seen.add(job.id);
      if (job.state === 'down' || job.state === 'crashed' || job.state === 'failed') ended.push(job);
      const previous = host.jobs.get(job.id);
      // A list can be older than an event already applied: never move a job back in its life.
      if (previous && STATE_RANK[job.state] < STATE_RANK[previous.state]) continue;
      if (previous?.upAt !== undefined && job.state === 'up') job.upAt = previous.upAt;
      if (!previous) {
        // First sight (a new leader reading the host): the job's past is not news.
        if (job.state === 'pending' || job.state === 'starting' || job.state === 'up' || job.state === 'stopping') host.jobs.set(job.id, job);
      } else if (job.state === previous.state) host.jobs.set(job.id, job);
      else this.apply(host, hj);
    }
    host.ended = ended;
    // A job asked for moments ago may not be listed yet; anything else unlisted is gone.
    const now = this.o.clock.now();
    let changed = false;
    for (const [id, job] of host.jobs) {
      if (seen.has(id) || (job.state === 'pending' && now - job.createdAt < this.o.pendingGraceMs)) continue;
      host.jobs.delete(id);
      changed = true;
    }
    if (changed) this.o.onChange();
  }

  private apply(host: TrackedHost, hj: HostJob): void {
    const job = scheduledJobFromHost(host.info.id, hj, this.o.clock.now());
    if (!job) return;
    const previous = host.jobs.get(job.id);
    if (previous && previous.state === job.state) return;
    if (previous?.upAt !== undefined) job.upAt = previous.upAt;
    if (job.state === 'up') job.upAt ??= this.o.clock.now();
    if (job.state === 'down' || job.state === 'crashed' || job.state === 'failed') host.jobs.delete(job.id);
    else host.jobs.set(job.id, job);
    this.o.onJob(host, job, previous);
    this.o.onChange();
  }
}
