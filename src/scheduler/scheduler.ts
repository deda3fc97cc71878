import { randomUUID } from 'node:crypto';
import { AsyncQueue } from '../common/async-queue.js';
import { CloseGuard, type Closable } from '../common/lifecycle.js';
import { silentLogger, type Logger } from '../common/logger.js';
import { type Clock, systemClock } from '../common/clock.js';
import { ChangeFlag } from '../common/watch.js';
import type { Discovery } from '../discovery/discovery.js';
import { BACKOFF_DEFAULTS, type BackoffOptions } from './backoff.js';
import { MemoryStateStore, type StateStore } from './backoff-ledger.js';
import { NotLeaderError, SchedulerErrorCodes, SchedulerInputError } from './errors.js';
import type { FormationSource } from './formation-source.js';
import type { HostConnector } from './host-client.js';
import { leadershipLoop } from './leadership.js';
import { LeaderTerm } from './term.js';
import type { OneOffRequest } from './term-options.js';
import type { ScheduledJob, SchedulerEvent, SchedulerEventType, SchedulerView } from './types.js';
import { validateProcessSpec } from './validate.js';

/** How fast the scheduler reacts and retries. All in ms. */
export interface SchedulerTiming {
  /** Full reconcile pass at least this often, besides the passes events trigger. Default 5000. */
  resyncMs: number;
  /**
   * TTL of the scheduler's own registration in the election. A dead leader is replaced within it.
   * Default 3000.
   */
  leaderTtlMs: number;
  /** Wait before reaching again a host whose job list or event stream failed. Default 500. */
  hostRetryMs: number;
  /**
   * A new leader starts nothing until every registered host's job list is read, or this long has
   * passed (then unreachable hosts are left out). Default 5000.
   */
  hostReadyTimeoutMs: number;
  /**
   * A host receives jobs moved by rebalancing only after it has been ready (registered, job list
   * read) this long, so a host that joins and leaves again causes no churn. Default 5000.
   */
  rebalanceSettleMs: number;
  /** Crash restart backoff. */
  backoff: BackoffOptions;
}

export const SCHEDULER_DEFAULTS = Object.freeze({
  /** Discovery service the instances campaign in. */
  service: 'flynn-scheduler',
  timing: Object.freeze({
    resyncMs: 5_000,
    leaderTtlMs: 3_000,
    hostRetryMs: 500,
    hostReadyTimeoutMs: 5_000,
    rebalanceSettleMs: 5_000,
    backoff: BACKOFF_DEFAULTS,
  }) as Readonly<SchedulerTiming>,
});

export interface SchedulerOptions {
  /** This instance's id, shown in events and the election. Default: a random UUID. */
  id?: string;
  /** Where hosts register (`flynn-host`) and the instances elect a leader. */
  discovery: Discovery;
  /** Desired state. */
  formations: FormationSource;
  /** Turns a host's discovery registration into a connected host. */
  connectHost: HostConnector;
  /** Default silent. */
  logger?: Logger;
  /** Discovery service of the election. Default `flynn-scheduler`. */
  service?: string;
  /** `host:port` registered for this instance in the election (informational). Default `127.0.0.1:1`. */
  addr?: string;
  timing?: Partial<Omit<SchedulerTiming, 'backoff'>> & { backoff?: Partial<BackoffOptions> };
  /**
   * Move running jobs to a host that joined, one at a time per type, without downtime: the
   * replacement starts on the emptier host, and once it is up the newest job on the fullest host
   * stops. Only when the spread differs by 2 or more; never omni types. Default true.
   */
  rebalance?: boolean;
  /**
   * Where the crash backoff is kept (restarts owed, restarted jobs not yet up `resetAfterMs`), so a
   * restarted scheduler or platform goes on with a crash loop's delays instead of restarting at
   * once. Give the controller's store; every scheduler instance of a cluster shares it. Default: a
   * {@link MemoryStateStore} of this instance (kept across its terms, lost with it).
   */
  state?: StateStore;
  /**
   * Time of every timing policy: crash backoff (when a restart is due, how long a job was up), the
   * resync interval, host settle, ready and retry waits, the election's retry. Default the system
   * clock. With a `ManualClock`, `advance()` wakes what came due (a test moves time on instead of
   * sleeping); the election's lease is the discovery backend's, on its own clock.
   */
  clock?: Clock;
}

export interface SchedulerEventsOptions {
  signal?: AbortSignal;
  /** Only these event types. */
  types?: SchedulerEventType[];
}

/** Whether an instance leads, and how many hosts it has listed (their jobs read). */
export interface LeadershipState {
  leading: boolean;
  readyHosts: number;
}

/** A running scheduler instance. */
export interface Scheduler extends Closable {
  readonly id: string;
  /** Whether this instance leads now. */
  readonly leading: boolean;
  /** Every decision from now on, as it is taken; ends on close or when `signal` aborts. */
  events(options?: SchedulerEventsOptions): AsyncIterable<SchedulerEvent>;
  /** {@link LeadershipState} now, then after each change; ends on close or when `signal` aborts. */
  watchLeadership(options?: { signal?: AbortSignal }): AsyncIterable<LeadershipState>;
  /** Hosts and jobs per formation (`flynn ps`); empty on a follower. */
  view(): SchedulerView;
  /** Start a one-off job (`flynn run`) on a fitting host; never restarted. Leader only. */
  runJob(request: OneOffRequest): Promise<ScheduledJob>;
  /** Resolves after a full reconcile pass that began after the call. Leader only. */
  settle(): Promise<void>;
}

function resolveTiming(input: SchedulerOptions['timing'] = {}): SchedulerTiming {
  const d = SCHEDULER_DEFAULTS.timing;
  const timing: SchedulerTiming = {
    resyncMs: input.resyncMs ?? d.resyncMs,
    leaderTtlMs: input.leaderTtlMs ?? d.leaderTtlMs,
    hostRetryMs: input.hostRetryMs ?? d.hostRetryMs,
    hostReadyTimeoutMs: input.hostReadyTimeoutMs ?? d.hostReadyTimeoutMs,
    rebalanceSettleMs: input.rebalanceSettleMs ?? d.rebalanceSettleMs,
    backoff: { ...d.backoff, ...input.backoff },
  };
  const check = (field: string, value: number, min: number) => {
    if (!Number.isFinite(value) || value < min) {
      throw new SchedulerInputError(SchedulerErrorCodes.INVALID_OPTIONS, `invalid timing.${field} ${value}: expected a number ≥ ${min}`, { field: `timing.${field}` });
    }
  };
  check('resyncMs', timing.resyncMs, 10);
  check('leaderTtlMs', timing.leaderTtlMs, 1000);
  check('hostRetryMs', timing.hostRetryMs, 1);
  check('hostReadyTimeoutMs', timing.hostReadyTimeoutMs, 0);
  check('rebalanceSettleMs', timing.rebalanceSettleMs, 0);
  check('backoff.immediateRestarts', timing.backoff.immediateRestarts, 0);
  check('backoff.initialDelayMs', timing.backoff.initialDelayMs, 0);
  check('backoff.factor', timing.backoff.factor, 1);
  check('backoff.maxDelayMs', timing.backoff.maxDelayMs, 0);
  check('backoff.resetAfterMs', timing.backoff.resetAfterMs, 0);
  Object.freeze(timing.backoff);
  return Object.freeze(timing);
}

/**
 * Start a scheduler instance: it campaigns for leadership and, while it leads, keeps every
 * formation running on the hosts. Start several for high availability; exactly one acts.
 */
export async function startScheduler(options: SchedulerOptions): Promise<Scheduler> {
  const timing = resolveTiming(options.timing);
  for (const field of ['discovery', 'formations', 'connectHost'] as const) {
    if (!options[field]) throw new SchedulerInputError(SchedulerErrorCodes.INVALID_OPTIONS, `${field} is required`, { field });
  }
  if (options.rebalance !== undefined && typeof options.rebalance !== 'boolean') {
    throw new SchedulerInputError(SchedulerErrorCodes.INVALID_OPTIONS, `invalid rebalance ${String(options.rebalance)}: expected true or false`, { field: 'rebalance' });
  }
  const id = options.id ?? randomUUID();
  const logger = (options.logger ?? silentLogger).child({ component: 'scheduler', schedulerId: id });
  const guard = new CloseGuard(`scheduler ${id}`);
  const subscribers = new Set<{ queue: AsyncQueue<SchedulerEvent>; types?: Set<SchedulerEventType> }>();
  const emit = (event: SchedulerEvent) => {
    logger.debug(event.type, { event });
    for (const s of subscribers) if (!s.types || s.types.has(event.type)) s.queue.push(event);
  };
  let term: LeaderTerm | undefined;
  const stop = new AbortController();
  const leadershipWatchers = new Set<ChangeFlag>();
  const leadershipChanged = () => {
    for (const w of leadershipWatchers) w.notify();
  };

  const clock = options.clock ?? systemClock;
  const state = options.state ?? new MemoryStateStore();
  const loop = leadershipLoop(
    {
      discovery: options.discovery,
      service: options.service ?? SCHEDULER_DEFAULTS.service,
      addr: options.addr ?? '127.0.0.1:1',
      meta: { id },
      ttlMs: timing.leaderTtlMs,
      retryMs: timing.hostRetryMs,
      clock,
      logger,
      lead: async (signal) => {
        const t = new LeaderTerm({
          schedulerId: id,
          discovery: options.discovery,
          formations: options.formations,
          connectHost: options.connectHost,
          logger,
          resyncMs: timing.resyncMs,
          hostRetryMs: timing.hostRetryMs,
          hostReadyTimeoutMs: timing.hostReadyTimeoutMs,
          backoff: timing.backoff,
          state,
          rebalance: options.rebalance ?? true,
          rebalanceSettleMs: timing.rebalanceSettleMs,
          emit,
          clock,
          onHostsChange: leadershipChanged,
        });
        logger.info('leading');
        let said = false;
        try {
          const aborted = new Promise<void>((resolve) => {
            if (signal.aborted) resolve();
            else signal.addEventListener('abort', () => resolve(), { once: true });
          });
          await Promise.race([t.start(), aborted]);
          if (!signal.aborted) {
            term = t;
            // Said once the term can act: a `runJob` or `settle` on this event does not meet NotLeaderError.
            emit({ type: 'leader', schedulerId: id, leading: true });
            said = true;
          }
          leadershipChanged();
          await aborted;
        } finally {
          term = undefined;
          leadershipChanged();
          await t.close();
          logger.info('no longer leading');
          if (said) emit({ type: 'leader', schedulerId: id, leading: false });
        }
      },
    },
    stop.signal,
  );

  const requireTerm = (): LeaderTerm => {
    guard.assertOpen();
    if (!term) throw new NotLeaderError(id);
    return term;
  };

  const close = () =>
    guard.close(async () => {
      stop.abort();
      await loop;
      for (const s of subscribers) s.queue.end();
      leadershipChanged();
    });

  return {
    id,
    get leading() {
      return term !== undefined;
    },
    events(o: SchedulerEventsOptions = {}) {
      guard.assertOpen();
      const onAbort = () => entry.queue.end();
      const entry: { queue: AsyncQueue<SchedulerEvent>; types?: Set<SchedulerEventType> } = {
        queue: new AsyncQueue<SchedulerEvent>(() => {
          subscribers.delete(entry);
          o.signal?.removeEventListener('abort', onAbort);
        }),
      };
      if (o.types) entry.types = new Set(o.types);
      subscribers.add(entry);
      if (o.signal?.aborted) entry.queue.end();
      else o.signal?.addEventListener('abort', onAbort, { once: true });
      return entry.queue;
    },
    async *watchLeadership(o: { signal?: AbortSignal } = {}) {
      guard.assertOpen();
      const changed = new ChangeFlag();
      leadershipWatchers.add(changed);
      try {
        for (;;) {
          yield { leading: term !== undefined, readyHosts: term ? term.view().hosts.filter((h) => h.ready).length : 0 };
          if (guard.closed) return;
          await changed.wait(o.signal);
        }
      } catch (err) {
        if (!o.signal?.aborted) throw err;
      } finally {
        leadershipWatchers.delete(changed);
      }
    },
    view() {
      guard.assertOpen();
      const base = { schedulerId: id, leading: term !== undefined };
      return term ? { ...base, ...term.view() } : { ...base, hosts: [], formations: [], oneOff: [] };
    },
    async runJob(request) {
      const t = requireTerm();
      if (typeof request?.app !== 'string' || typeof request.release !== 'string' || request.app === '' || request.release === '') {
        throw new SchedulerInputError(SchedulerErrorCodes.INVALID_JOB, 'a one-off job needs app and release', { field: 'app' });
      }
      validateProcessSpec(request, 'job');
      return t.runOneOff(request);
    },
    async settle() {
      await requireTerm().settle();
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
