/**
 * The crash backoff kept outside the scheduler's memory, so a restarted scheduler (or platform)
 * goes on where the crash loop was instead of restarting at once: per app, release and type (and
 * host for omni types) one record of the restarts still owed (restart number, when due) and of the
 * restarted jobs still young (up less than `resetAfterMs`). The records are a function of the
 * leader's state after each pass; only changed records are written, so the store holds at most
 * one record per crash-looping type and none once the jobs stay up or the formation goes.
 */
import type { Logger } from '../common/logger.js';
import type { BackoffOptions } from './backoff.js';
import type { PendingRestart } from './reconcile.js';
import { formationKey, type Formation, type ScheduledJob } from './types.js';

/**
 * Where the scheduler keeps small state that must outlive it. The controller's store implements it
 * in a platform (keys under its `state/`); {@link MemoryStateStore} is the default and the tests'.
 */
export interface StateStore {
  /** Entries whose key starts with `prefix`, key order. */
  listState(prefix: string): Promise<Array<[string, string]>>;
  putState(key: string, value: string): Promise<void>;
  deleteState(key: string): Promise<void>;
}

/** State in memory: it outlives a leader term and a scheduler instance given the same store, not the process. */
export class MemoryStateStore implements StateStore {
  private readonly entries = new Map<string, string>();

  async listState(prefix: string): Promise<Array<[string, string]>> {
    return [...this.entries].filter(([k]) => k.startsWith(prefix)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  async putState(key: string, value: string): Promise<void> {
    this.entries.set(key, value);
  }

  async deleteState(key: string): Promise<void> {
    this.entries.delete(key);
  }
}

/** One crash-looping type's backoff, as stored. */
export interface BackoffRecord {
  app: string;
  release: string;
  type: string;
  /** Omni types: the host of the jobs. */
  hostId?: string;
  /** Restarts owed for crashed jobs: restart number, not before `dueAt` (ms since the epoch). */
  owed: { attempt: number; dueAt: number; jobId: string }[];
  /** Restarted jobs not yet up `resetAfterMs`: their restart number, so a job lost with the platform goes on counting. */
  young: { attempt: number; jobId: string }[];
}

const PREFIX = 'scheduler/backoff/';

function recordKey(r: { app: string; release: string; type: string; hostId?: string }): string {
  const parts = [r.app, r.release, r.type, ...(r.hostId === undefined ? [] : [r.hostId])];
  return PREFIX + parts.map(encodeURIComponent).join('/');
}

function recordOf(records: Map<string, BackoffRecord>, job: { app: string; release: string; type: string; hostId?: string }): BackoffRecord {
  const key = recordKey(job);
  let r = records.get(key);
  if (!r) {
    r = { app: job.app, release: job.release, type: job.type, owed: [], young: [] };
    if (job.hostId !== undefined) r.hostId = job.hostId;
    records.set(key, r);
  }
  return r;
}

export interface BackoffStateInput {
  formations: ReadonlyMap<string, Formation>;
  /** The restarts the planner still holds. */
  restarts: readonly PendingRestart[];
  /** Live jobs. */
  live: readonly ScheduledJob[];
  now: number;
  backoff: BackoffOptions;
}

/** The records of the leader's state now (key → record); types without a crash loop have none. */
export function backoffRecords(input: BackoffStateInput): Map<string, BackoffRecord> {
  const records = new Map<string, BackoffRecord>();
  for (const r of input.restarts) {
    const formation = input.formations.get(r.formationKey);
    if (!formation) continue;
    const owed = recordOf(records, { app: formation.app, release: formation.release, type: r.type, ...(r.hostId === undefined ? {} : { hostId: r.hostId }) });
    owed.owed.push({ attempt: r.attempt, dueAt: r.dueAt, jobId: r.previousJobId });
  }
  for (const j of input.live) {
    const formation = input.formations.get(formationKey(j.app, j.release));
    if (j.oneOff || j.restarts < 1 || !formation) continue;
    if (j.upAt !== undefined && input.now - j.upAt >= input.backoff.resetAfterMs) continue;
    const omni = formation.omni?.includes(j.type) ?? false;
    recordOf(records, { app: j.app, release: j.release, type: j.type, ...(omni ? { hostId: j.hostId } : {}) }).young.push({ attempt: j.restarts, jobId: j.id });
  }
  for (const r of records.values()) {
    r.owed.sort((a, b) => a.dueAt - b.dueAt || (a.jobId < b.jobId ? -1 : 1));
    r.young.sort((a, b) => (a.jobId < b.jobId ? -1 : 1));
  }
  return records;
}

export interface RestoreInput {
  records: Iterable<BackoffRecord>;
  /** Live jobs on the hosts now (every host listed). */
  live: readonly ScheduledJob[];
  /** Crashed jobs a restart is already known for (from the hosts' ended jobs). */
  known: ReadonlySet<string>;
  now: number;
  backoff: BackoffOptions;
}

/**
 * The restarts a new leader owes from stored records: each owed restart as it was planned (its due
 * time capped at `maxDelayMs` from now, against a clock that jumped), and each young restarted job
 * that is gone (lost with its host or the platform) restarted at once with its own restart number,
 * so its next crash waits longer still. Surplus restarts are dropped by the planner.
 */
export function restartsFromRecords(input: RestoreInput): PendingRestart[] {
  const live = new Set(input.live.map((j) => j.id));
  const out: PendingRestart[] = [];
  for (const r of input.records) {
    const base = { formationKey: formationKey(r.app, r.release), type: r.type, ...(r.hostId === undefined ? {} : { hostId: r.hostId }) };
    for (const o of r.owed) {
      if (input.known.has(o.jobId)) continue;
      out.push({ ...base, attempt: o.attempt, dueAt: Math.min(o.dueAt, input.now + input.backoff.maxDelayMs), previousJobId: o.jobId });
    }
    for (const y of r.young) {
      if (live.has(y.jobId) || input.known.has(y.jobId)) continue;
      out.push({ ...base, attempt: y.attempt, dueAt: input.now, previousJobId: y.jobId });
    }
  }
  return out;
}

/**
 * The stored records and their writer: {@link load} once per term, then {@link sync} after each
 * pass. Writes run one at a time; a failed write is tried again at the next sync.
 */
export class BackoffLedger {
  private written = new Map<string, string>();
  private writing: Promise<void> = Promise.resolve();
  private wanted: Map<string, BackoffRecord> | undefined;

  constructor(
    private readonly store: StateStore,
    private readonly logger: Logger,
  ) {}

  /** The stored records; an unreadable store counts as empty (logged), so a leader never waits on it. */
  async load(): Promise<BackoffRecord[]> {
    try {
      const entries = await this.store.listState(PREFIX);
      const records: BackoffRecord[] = [];
      for (const [key, value] of entries) {
        this.written.set(key, value);
        try {
          records.push(JSON.parse(value) as BackoffRecord);
        } catch {
          this.logger.warn('ignoring an unreadable backoff record', { key });
        }
      }
      return records;
    } catch (err) {
      this.logger.warn('could not read the stored crash backoff', { error: (err as Error).message });
      return [];
    }
  }

  /** Make the store hold exactly `records` (only changed keys are written). */
  sync(records: Map<string, BackoffRecord>): void {
    const first = this.wanted === undefined;
    this.wanted = records;
    if (first) this.writing = this.writing.then(() => this.flush());
  }

  /** Resolves once every write asked for so far is done. */
  async idle(): Promise<void> {
    for (;;) {
      const writing = this.writing;
      await writing;
      if (writing === this.writing) return;
    }
  }

  private async flush(): Promise<void> {
    const wanted = this.wanted as Map<string, BackoffRecord>;
    this.wanted = undefined;
    const values = new Map([...wanted].map(([k, r]) => [k, JSON.stringify(r)]));
    try {
      for (const key of [...this.written.keys()]) {
        if (values.has(key)) continue;
        await this.store.deleteState(key);
        this.written.delete(key);
      }
      for (const [key, value] of values) {
        if (this.written.get(key) === value) continue;
        await this.store.putState(key, value);
        this.written.set(key, value);
      }
    } catch (err) {
      this.logger.warn('could not store the crash backoff', { error: (err as Error).message });
    }
  }
}
