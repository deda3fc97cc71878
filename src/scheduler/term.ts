/**
 * One leader term: follow hosts and formations, reconcile, restart crashed jobs, place one-offs.
 * Created when an election is won and closed when it is lost; nothing of it outlives the term.
 */
import { randomUUID } from 'node:crypto';
import { after, every } from '../common/clock.js';
import { nextRestartAttempt, restartDelay } from './backoff.js';
import { BackoffLedger, backoffRecords, restartsFromRecords, type BackoffRecord } from './backoff-ledger.js';
import { NoHostError } from './errors.js';
import { HostTracker, type TrackedHost } from './hosts.js';
import { ClusterLoad } from './placement.js';
import { plan, type PendingRestart, type PlannedBlock, type RebalanceMove } from './reconcile.js';
import { recoverRestarts } from './recovery.js';
import { startRequest } from './start-request.js';
import type { OneOffRequest, TermOptions } from './term-options.js';
import { termView } from './term-view.js';
import { formationKey, LIVE_STATES, type Formation, type ProcessSpec, type ScheduledJob, type SchedulerView, type StopReason } from './types.js';

export class LeaderTerm {
  private readonly formations = new Map<string, Formation>();
  private readonly tracker: HostTracker;
  private restarts: PendingRestart[] = [];
  private moves: RebalanceMove[] = [];
  /** The restarts owed for crashes before this term have been read from the hosts' ended jobs. */
  private recovered = false;
  private readonly ledger: BackoffLedger;
  /** The backoff records stored by earlier terms, until {@link recover} takes them in. */
  private stored: BackoffRecord[] = [];
  private cancelSettle = () => {};
  private blocked = new Map<string, PlannedBlock>();
  private readonly stopping = new Set<string>();
  private readonly calls = new Set<Promise<void>>();
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private dirty = false;
  private cancelWake = () => {};
  private formationsKnown = false;
  private formationTask: Promise<void> | undefined;
  private idleWaiters: (() => void)[] = [];
  private resyncing = false;
  private cancelReady = () => {};

  constructor(private readonly o: TermOptions) {
    this.ledger = new BackoffLedger(o.state, o.logger);
    this.tracker = new HostTracker({
      discovery: o.discovery,
      connect: o.connectHost,
      logger: o.logger,
      retryMs: o.hostRetryMs,
      pendingGraceMs: Math.max(10_000, o.hostReadyTimeoutMs),
      clock: o.clock,
      onHostUp: (host) => o.emit({ type: 'host-up', hostId: host.info.id, addr: host.info.addr }),
      onHostLost: (host, jobs) => o.emit({ type: 'host-lost', hostId: host.info.id, jobIds: jobs.map((j) => j.id) }),
      onJob: (host, job, previous) => this.onJob(host, job, previous),
      onChange: () => {
        this.request();
        o.onHostsChange?.();
      },
    });
  }

  /** Read formations and the hosts' jobs, then reconcile; returns once the first state is read. */
  async start(): Promise<void> {
    let resolveFirst!: () => void;
    const first = new Promise<void>((r) => (resolveFirst = r));
    this.formationTask = (async () => {
      const signal = this.abort.signal;
      while (!signal.aborted) {
        try {
          for await (const event of this.o.formations.watch({ signal })) {
            if (event.type === 'current') {
              this.formations.clear();
              for (const f of event.formations) this.formations.set(formationKey(f.app, f.release), f);
              this.formationsKnown = true;
              resolveFirst();
            } else if (event.type === 'put') this.formations.set(formationKey(event.formation.app, event.formation.release), event.formation);
            else this.formations.delete(formationKey(event.app, event.release));
            this.request();
          }
        } catch (err) {
          if (!signal.aborted) this.o.logger.error('formation watch failed', { error: (err as Error).message });
        }
        if (signal.aborted) break;
        await this.o.clock.sleep(this.o.hostRetryMs, signal).catch(() => {});
      }
      resolveFirst();
    })();
    const [stored] = await Promise.all([this.ledger.load(), first, this.tracker.start()]);
    this.stored = stored;
    every(this.o.clock, this.o.resyncMs, () => this.resync(), { signal: this.abort.signal });
    this.request();
  }

  /** Resolves after a full reconcile pass that began after this call. */
  settle(): Promise<void> {
    return new Promise((resolve) => {
      this.idleWaiters.push(resolve);
      this.request();
    });
  }

  async close(): Promise<void> {
    this.abort.abort();
    await this.running;
    await this.formationTask;
    await Promise.all([...this.calls]);
    await this.tracker.close();
    await this.ledger.idle();
    for (const w of this.idleWaiters.splice(0)) w();
  }

  /** The periodic resync: read every host's job list again, then reconcile. */
  private resync(): void {
    if (this.resyncing) return;
    this.resyncing = true;
    this.track(
      this.tracker
        .relist()
        .then(() => this.request())
        .finally(() => (this.resyncing = false)),
    );
  }

  private request(): void {
    if (this.abort.signal.aborted) return;
    this.dirty = true;
    this.running ??= (async () => {
      while (this.dirty && !this.abort.signal.aborted) {
        this.dirty = false;
        const waiters = this.idleWaiters.splice(0);
        try {
          this.pass();
        } catch (err) {
          this.o.logger.error('reconcile pass failed', { error: (err as Error).message });
        }
        for (const w of waiters) w();
        await new Promise((r) => setImmediate(r));
      }
      this.running = undefined;
    })();
  }

  /** Whether starting jobs is safe now; when a host's list is awaited, a pass is due when its wait ends. */
  private placeable(now: number): boolean {
    if (!this.formationsKnown || !this.tracker.known) return false;
    let until = 0;
    for (const h of this.tracker.hosts.values()) {
      if (!h.listedOnce && now - h.since < this.o.hostReadyTimeoutMs) until = Math.max(until, h.since + this.o.hostReadyTimeoutMs);
    }
    if (until === 0) return true;
    this.cancelReady();
    this.cancelReady = this.wakeAt(until + 1);
    return false;
  }

  /** One reconcile pass: plan, then act on the plan without waiting for the hosts to answer. */
  private pass(): void {
    // Before the first formation list every running job would look removed, and be stopped.
    if (!this.formationsKnown) return;
    const now = this.o.clock.now();
    const ready = [...this.tracker.hosts.values()].filter((h) => h.ready);
    const placeable = this.placeable(now);
    if (placeable && !this.recovered) this.recover();
    const input: Parameters<typeof plan>[0] = {
      formations: this.formations,
      hosts: ready.map((h) => h.info),
      placeable,
      jobs: this.tracker.jobs().filter((j) => LIVE_STATES.has(j.state) && !this.stopping.has(j.id)),
      restarts: this.restarts,
      now,
      moves: this.moves,
    };
    if (this.o.rebalance) input.rebalanceTo = this.settledHosts(ready, now);
    const result = plan(input);
    this.restarts = result.restarts;
    this.moves = result.moves;
    this.cancelWake();
    if (result.wakeAt !== undefined) this.cancelWake = this.wakeAt(result.wakeAt);
    for (const { job, reason, move } of result.stops) {
      this.stop(job, reason);
      if (move) {
        this.o.emit({
          type: 'rebalanced',
          app: job.app,
          release: job.release,
          processType: job.type,
          fromHostId: move.fromHostId,
          toHostId: move.toHostId,
          startedJobId: move.job.id,
          stoppedJobId: job.id,
        });
      }
    }
    for (const s of result.starts) {
      const host = this.tracker.hosts.get(s.hostId) as TrackedHost;
      const spec = s.formation.spec[s.type] as ProcessSpec;
      const job = this.startJob(host, s.formation.app, s.formation.release, s.type, spec, {
        env: s.formation.env ?? {},
        memoryBytes: s.formation.memory?.[s.type] ?? 0,
        restarts: s.restart?.attempt ?? 0,
        oneOff: false,
        onFail: () => {
          if (s.restart) this.restarts.push(s.restart);
        },
      });
      if (s.restart) this.o.emit({ type: 'restarted', job: { ...job }, previousJobId: s.restart.previousJobId });
      if (s.moveFrom !== undefined) this.moves.push({ formationKey: formationKey(job.app, job.release), type: job.type, fromHostId: s.moveFrom, toHostId: job.hostId, job });
    }
    const blocked = new Map<string, PlannedBlock>();
    for (const b of result.blocked) {
      const key = `${formationKey(b.formation.app, b.formation.release)}\u0000${b.type}`;
      blocked.set(key, b);
      const before = this.blocked.get(key);
      if (!before || before.count !== b.count || before.reason !== b.reason) {
        this.o.emit({ type: 'blocked', app: b.formation.app, release: b.formation.release, processType: b.type, count: b.count, reason: b.reason });
      }
    }
    this.blocked = blocked;
    if (this.recovered) {
      const live = this.tracker.jobs().filter((j) => LIVE_STATES.has(j.state));
      this.ledger.sync(backoffRecords({ formations: this.formations, restarts: this.restarts, live, now, backoff: this.o.backoff }));
    }
  }

  /** Ready hosts that have been ready for the settle time; a pass is due when the next one settles. */
  private settledHosts(ready: TrackedHost[], now: number): Set<string> {
    const settled = new Set<string>();
    let next = Infinity;
    for (const h of ready) {
      const at = (h.readyAt ?? now) + this.o.rebalanceSettleMs;
      if (at <= now) settled.add(h.info.id);
      else next = Math.min(next, at);
    }
    this.cancelSettle();
    if (next !== Infinity) this.cancelSettle = this.wakeAt(next + 1);
    return settled;
  }

  /**
   * Once per term, before the first start: take over the crash restarts the previous leader still
   * owed, from the hosts' ended jobs and from the stored backoff (which also knows crashes the hosts
   * forgot, e.g. after a platform restart).
   */
  private recover(): void {
    this.recovered = true;
    const live = this.tracker.jobs().filter((j) => LIVE_STATES.has(j.state));
    const fromHosts = recoverRestarts({
      formations: this.formations,
      live,
      ended: [...this.tracker.hosts.values()].flatMap((h) => h.ended),
      backoff: this.o.backoff,
    });
    const known = new Set(this.restarts.map((r) => r.previousJobId));
    const fromStore = restartsFromRecords({ records: this.stored, live, known: new Set([...known, ...fromHosts.map((r) => r.previousJobId)]), now: this.o.clock.now(), backoff: this.o.backoff });
    this.stored = [];
    for (const r of [...fromHosts, ...fromStore]) {
      if (known.has(r.previousJobId)) continue;
      this.restarts.push(r);
      this.o.logger.info('carrying over a crash restart', { jobId: r.previousJobId, attempt: r.attempt, dueInMs: Math.max(0, r.dueAt - this.o.clock.now()) });
    }
  }

  /** A reconcile pass at `at` on the clock (ms since the epoch); returns the function that cancels it. */
  private wakeAt(at: number): () => void {
    return after(this.o.clock, Math.max(0, at - this.o.clock.now()), () => this.request(), { signal: this.abort.signal, unref: true });
  }

  private track(call: Promise<void>): void {
    const p = call
      .catch((err: unknown) => this.o.logger.error('background call failed', { error: (err as Error).message }))
      .finally(() => this.calls.delete(p));
    this.calls.add(p);
  }

  private startJob(
    host: TrackedHost,
    app: string,
    release: string,
    type: string,
    spec: ProcessSpec,
    o: { env: Record<string, string>; memoryBytes: number; restarts: number; oneOff: boolean; onFail?: () => void },
  ): ScheduledJob {
    const id = randomUUID();
    const now = this.o.clock.now();
    const job: ScheduledJob = { id, hostId: host.info.id, app, release, type, state: 'pending', oneOff: o.oneOff, restarts: o.restarts, memoryBytes: o.memoryBytes, createdAt: now };
    const request = startRequest(job, spec, o.env);
    host.jobs.set(id, job);
    this.o.emit({ type: 'placed', job: { ...job } });
    const client = host.client;
    this.track(
      (async () => {
        try {
          if (!client) throw new Error('not connected');
          const accepted = await client.startJob(request, { signal: this.abort.signal });
          if (accepted.id !== id && host.jobs.get(id) === job) {
            // The host chose its own id: follow it.
            host.jobs.delete(id);
            job.id = accepted.id;
            if (!host.jobs.has(accepted.id)) host.jobs.set(accepted.id, job);
          }
        } catch (err) {
          if (this.abort.signal.aborted) return;
          const current = host.jobs.get(id);
          if (current?.state === 'pending') host.jobs.delete(id);
          o.onFail?.();
          this.o.logger.warn('start failed', { hostId: host.info.id, jobId: id, error: (err as Error).message });
          this.o.emit({ type: 'start-failed', app, release, processType: type, hostId: host.info.id, message: (err as Error).message });
          this.wakeAt(this.o.clock.now() + this.o.hostRetryMs);
        }
      })(),
    );
    return job;
  }

  private stop(job: ScheduledJob, reason: StopReason): void {
    const host = this.tracker.hosts.get(job.hostId);
    if (!host?.client) return;
    const client = host.client;
    this.stopping.add(job.id);
    this.o.emit({ type: 'stopped', job: { ...job }, reason });
    this.track(
      (async () => {
        try {
          await client.stopJob(job.id, { signal: this.abort.signal });
          const current = host.jobs.get(job.id);
          if (current && LIVE_STATES.has(current.state)) current.state = 'stopping';
        } catch (err) {
          if (this.abort.signal.aborted) return;
          this.o.logger.warn('stop failed', { hostId: job.hostId, jobId: job.id, error: (err as Error).message });
          this.wakeAt(this.o.clock.now() + this.o.hostRetryMs);
        } finally {
          this.stopping.delete(job.id);
        }
      })(),
    );
  }

  private onJob(host: TrackedHost, job: ScheduledJob, previous: ScheduledJob | undefined): void {
    if (job.state === 'up' && previous?.state !== 'up') this.o.emit({ type: 'started', job: { ...job } });
    const finished = job.state === 'down' || job.state === 'crashed' || job.state === 'failed';
    if (!finished || !previous) return;
    const asked = previous.state === 'stopping' || this.stopping.has(job.id);
    if (asked || (job.oneOff && job.state === 'down')) return;
    if (job.oneOff) {
      this.o.emit({ type: 'crashed', job: { ...job }, state: job.state, restartInMs: null });
      return;
    }
    const formation = this.formations.get(formationKey(job.app, job.release));
    const upFor = previous.upAt === undefined ? undefined : this.o.clock.now() - previous.upAt;
    const attempt = nextRestartAttempt(job.restarts, upFor, this.o.backoff);
    const delay = restartDelay(attempt, this.o.backoff);
    const restart: PendingRestart = { formationKey: formationKey(job.app, job.release), type: job.type, attempt, dueAt: this.o.clock.now() + delay, previousJobId: job.id };
    if (formation?.omni?.includes(job.type)) restart.hostId = host.info.id;
    this.restarts.push(restart);
    this.o.emit({ type: 'crashed', job: { ...job }, state: job.state, restartInMs: delay });
  }

  /** Place and start a one-off job now; never restarted. */
  runOneOff(request: OneOffRequest): ScheduledJob {
    const hosts = [...this.tracker.hosts.values()].filter((h) => h.ready);
    const load = new ClusterLoad(hosts.map((h) => h.info));
    for (const j of this.tracker.jobs()) if (LIVE_STATES.has(j.state)) load.add(j.hostId, formationKey(j.app, j.release), j.type, j.memoryBytes);
    const type = request.type ?? 'run';
    const memoryBytes = request.memoryBytes ?? 0;
    const placed = load.place({ formationKey: formationKey(request.app, request.release), type, tags: request.tags ?? {}, memoryBytes });
    if (!('hostId' in placed)) throw new NoHostError(`no host fits the one-off job of ${request.app} (${placed.blocked})`, { detail: { reason: placed.blocked } });
    const host = this.tracker.hosts.get(placed.hostId) as TrackedHost;
    const spec: ProcessSpec = { image: request.image, cmd: request.cmd };
    if (request.ports) spec.ports = request.ports;
    if (request.artifact) spec.artifact = request.artifact;
    if (request.imageArchive) spec.imageArchive = request.imageArchive;
    if (request.stdio) spec.stdio = request.stdio;
    return { ...this.startJob(host, request.app, request.release, type, spec, { env: request.env ?? {}, memoryBytes, restarts: 0, oneOff: true }) };
  }

  view(): Omit<SchedulerView, 'schedulerId' | 'leading'> {
    return termView(this.tracker.hosts.values(), this.tracker.jobs(), this.formations, this.blocked, this.restarts);
  }
}
