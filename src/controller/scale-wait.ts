/**
 * What a scale waits for (`flynn scale`, {@link ControllerClient.scaleAndWait}): every scaled type
 * runs exactly its count of jobs of the release, all up, and the jobs the scale started stayed up
 * for `holdMs`; or a job it started crashed (or failed to start), which fails the scale. "Up" is
 * the job runner's (host/readiness.ts: the job answers); the hold is what keeps a job that answers
 * once and then exits from being reported up.
 */
import type { Formation, Job, LogLine } from './types.js';

export const SCALE_WAIT_DEFAULTS = Object.freeze({
  /** How long a scale waits for its jobs, in ms. */
  timeoutMs: 60_000,
  /** How long every job a scale started must stay up before the scale says it is, in ms. */
  holdMs: 1_000,
  /** After the first crash, how long more crashes are gathered (to say how many) before failing, in ms. */
  gatherMs: 1_000,
});

/** One scaled type now: its count, its live jobs of the release (up or starting), and how many are up. */
export interface ScaleCount {
  type: string;
  want: number;
  live: number;
  up: number;
}

export type ScaleVerdict =
  | { kind: 'up'; upAt: number }
  | { kind: 'crashed'; type: string; jobs: Job[] }
  | { kind: 'waiting'; counts: ScaleCount[]; wakeAt?: number };

const ended = (j: Job) => j.state === 'crashed' || j.state === 'failed';

/**
 * A scale's progress over the app's job lists (`watchJobs`), told the time of each: pure, so the
 * client's wait only feeds it. `before` holds the ids of the jobs listed before the scale: only
 * jobs the scale started can fail it (a crash listed from earlier does not).
 */
export class ScaleProgress {
  /** Jobs the scale started, by id: when first seen up. */
  private readonly upSince = new Map<string, number>();
  private allUpAt: number | undefined;
  private firstCrashAt: number | undefined;

  constructor(
    private readonly formation: Pick<Formation, 'releaseId' | 'processes'>,
    private readonly types: readonly string[],
    private readonly before: ReadonlySet<string>,
    private readonly options: { holdMs: number; gatherMs: number } = SCALE_WAIT_DEFAULTS,
  ) {}

  see(jobs: readonly Job[], now: number): ScaleVerdict {
    const mine = jobs.filter((j) => j.releaseId === this.formation.releaseId && this.types.includes(j.type));
    const fresh = mine.filter((j) => !this.before.has(j.id));
    const want = (type: string) => this.formation.processes[type] ?? 0;
    const counts = this.types.map((type) => {
      const live = mine.filter((j) => j.type === type && (j.state === 'up' || j.state === 'starting'));
      return { type, want: want(type), live: live.length, up: live.filter((j) => j.state === 'up').length };
    });
    const crashed = fresh.filter(ended);
    if (crashed.length > 0) {
      this.firstCrashAt ??= now;
      // The type with the most crashes; its jobs oldest first.
      const type = this.types.map((t) => ({ t, n: crashed.filter((j) => j.type === t).length })).sort((a, b) => b.n - a.n)[0]?.t as string;
      const of = crashed.filter((j) => j.type === type).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
      const gatheredUntil = this.firstCrashAt + this.options.gatherMs;
      if (of.length >= want(type) || now >= gatheredUntil) return { kind: 'crashed', type, jobs: of };
      return { kind: 'waiting', counts, wakeAt: gatheredUntil };
    }
    for (const j of fresh) {
      if (j.state === 'up') this.upSince.set(j.id, this.upSince.get(j.id) ?? now);
      else this.upSince.delete(j.id);
    }
    if (!counts.every((c) => c.live === c.want && c.up === c.want)) {
      this.allUpAt = undefined;
      return { kind: 'waiting', counts };
    }
    this.allUpAt ??= now;
    const held = Math.max(0, ...fresh.filter((j) => j.state === 'up').map((j) => (this.upSince.get(j.id) ?? now) + this.options.holdMs));
    if (now >= held) return { kind: 'up', upAt: this.allUpAt };
    return { kind: 'waiting', counts, wakeAt: held };
  }
}

/**
 * The line of a crashed job's output that says why: its error line (`SyntaxError: ...`, `panic:
 * ...`), else its last line; of its stderr when it wrote any (the order of two streams written at
 * once is not kept everywhere: Docker stamps each on its own).
 */
export function tellingLine(output: readonly Pick<LogLine, 'stream' | 'msg'>[]): string | undefined {
  const errors = output.filter((l) => l.stream === 'stderr');
  const said = (errors.length > 0 ? errors : output).map((l) => l.msg.trim()).filter((l) => l !== '' && !/^Node\.js v\d/.test(l));
  const error = said.find((l) => /^(Uncaught )?([A-Z]\w*)?(Error|Exception)\b|^panic: /.test(l));
  const line = error ?? said.at(-1);
  return line !== undefined && line.length > 200 ? `${line.slice(0, 199)}…` : line;
}

/** An ended job's exit status in words: `status 1`, `status 137 (out of memory)`. */
export function statusWords(exit: NonNullable<Job['exit']>): string {
  return `status ${exit.code}${exit.reason !== 'exit' ? ` (${exit.reason === 'oom' ? 'out of memory' : exit.reason})` : ''}`;
}

/**
 * The one line of a scale whose `type` jobs crashed: how many, the last one's exit status and what
 * it said, and the command that shows its whole output.
 */
export function crashLine(app: string, type: string, crashed: readonly Job[], last: { job: Job; output: readonly Pick<LogLine, 'stream' | 'msg'>[] }): string {
  const short = last.job.id.slice(0, 8);
  const n = crashed.length;
  const failed = crashed.every((j) => j.state === 'failed');
  const head = `${n} ${type} job${n === 1 ? '' : 's'} ${failed ? 'failed to start' : 'crashed'} instead of coming up`;
  // A job that failed to start has its host's one line as its output (e.g. a damaged slug, with the fix): whole, not cut.
  const reason = last.job.state === 'failed' && last.output.length === 1 ? last.output[0]?.msg : undefined;
  if (reason !== undefined) return `${head}: the last, ${short}: ${reason} (see flynn log -a ${app} ${short})`;
  const exit = last.job.exit;
  const how = exit ? `exited with ${statusWords(exit)}` : last.job.state === 'failed' ? 'failed to start' : 'crashed';
  const said = tellingLine(last.output);
  return `${head}: the last, ${short}, ${how}${said !== undefined ? ` after ${JSON.stringify(said)}` : ' without output'} (see flynn log -a ${app} ${short})`;
}
