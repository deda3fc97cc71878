/**
 * The host agent's durable record of ended jobs (as flynn-host's state DB kept its jobs): one file
 * per job in the agent's state dir with the job (state, exit status, times) and its last log lines,
 * written atomically when the job ends. It outlives the runtime's own copy (a removed container, a
 * job dir) and the agent itself: a restarted agent or platform still lists the job and its last
 * lines. Bounded: lines per job (by count and bytes), jobs kept (by count and age).
 */
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../common/atomic-file.js';
import type { Job, LogLine } from './types.js';

export const ENDED_JOBS_DEFAULTS = Object.freeze({
  /** Last lines of output kept per ended job. */
  lines: 100,
  /** Most bytes of output kept per ended job (the newest lines win; one long line is cut). */
  bytes: 32 * 1024,
  /** Most ended jobs kept per host (the oldest are dropped first). */
  maxJobs: 500,
  /** How long an ended job is kept, in ms. */
  keptMs: 7 * 24 * 3600_000,
});

export interface EndedJobsOptions {
  /** The directory of this host's records (`<stateDir>/<hostId>/ended`). */
  dir: string;
  lines?: number;
  bytes?: number;
  maxJobs?: number;
  keptMs?: number;
  now?: () => number;
}

/** One ended job as kept on disk. */
export interface EndedJobRecord {
  job: Job;
  /** Its last lines of output, oldest first. */
  lines: LogLine[];
}

export class EndedJobStore {
  private readonly records = new Map<string, EndedJobRecord>();
  private readonly o: Required<EndedJobsOptions>;
  private ready: Promise<void> | undefined;

  constructor(options: EndedJobsOptions) {
    const d = ENDED_JOBS_DEFAULTS;
    this.o = { lines: d.lines, bytes: d.bytes, maxJobs: d.maxJobs, keptMs: d.keptMs, now: Date.now, ...options };
  }

  /** How many last lines a record keeps. */
  get lineCount(): number {
    return this.o.lines;
  }

  /** Read the records a previous agent left (unreadable ones are dropped), then prune. */
  async load(): Promise<void> {
    await this.dirReady();
    const found: EndedJobRecord[] = [];
    for (const name of await readdir(this.o.dir)) {
      if (!name.endsWith('.json')) continue;
      try {
        const rec = JSON.parse(await readFile(join(this.o.dir, name), 'utf8')) as EndedJobRecord;
        if (rec?.job?.id && Array.isArray(rec.lines)) found.push(rec);
      } catch {
        await rm(join(this.o.dir, name), { force: true });
      }
    }
    found.sort((a, b) => a.job.updatedAt.localeCompare(b.job.updatedAt));
    for (const rec of found) this.records.set(rec.job.id, rec);
    await this.prune();
  }

  /** Keep `job` (ended) with the last of `lines`; replaces an older record of the same job. */
  async save(job: Job, lines: LogLine[]): Promise<void> {
    await this.dirReady();
    const rec: EndedJobRecord = { job, lines: bound(lines, this.o.lines, this.o.bytes) };
    this.records.delete(job.id);
    this.records.set(job.id, rec);
    // The env holds the app's secrets: only the agent's user reads the record.
    await writeFileAtomic(this.file(job.id), JSON.stringify(rec), { mode: 0o600 });
    await this.prune();
  }

  get(id: string): EndedJobRecord | undefined {
    return this.records.get(id);
  }

  /** Every kept job, oldest end first. */
  list(): Job[] {
    return [...this.records.values()].map((r) => r.job);
  }

  /** Drop records over the age or count cap (oldest first). */
  private async prune(): Promise<void> {
    const cutoff = new Date(this.o.now() - this.o.keptMs).toISOString();
    for (const [id, rec] of this.records) {
      if (rec.job.updatedAt >= cutoff && this.records.size <= this.o.maxJobs) break;
      this.records.delete(id);
      await rm(this.file(id), { force: true });
    }
  }

  private file(id: string): string {
    return join(this.o.dir, `${id}.json`);
  }

  private dirReady(): Promise<void> {
    return (this.ready ??= mkdir(this.o.dir, { recursive: true, mode: 0o700 }).then(() => {}));
  }
}

/** The newest lines within `count` and `bytes` (a single line over `bytes` keeps its end). */
function bound(lines: LogLine[], count: number, bytes: number): LogLine[] {
  const out: LogLine[] = [];
  let total = 0;
  for (let i = lines.length - 1; i >= 0 && out.length < count; i--) {
    const l = lines[i] as LogLine;
    const size = Buffer.byteLength(l.line);
    if (total + size > bytes) {
      if (out.length === 0) out.push({ ...l, line: Buffer.from(l.line).subarray(size - bytes).toString() });
      break;
    }
    total += size;
    out.push(l);
  }
  return out.reverse();
}
