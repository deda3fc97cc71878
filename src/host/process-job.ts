/** A process job as the process runtime keeps it: its record on disk and in memory, its line log, and signals to its process group. */
import { readFile } from 'node:fs/promises';
import type { WriteStream } from 'node:fs';
import { join } from 'node:path';
import type { EventFanout } from './event-fanout.js';
import type { OutputTail } from './output-tail.js';
import type { RuntimeJob, RuntimeJobSpec } from './runtime.js';
import type { ExitStatus, LogLine } from './types.js';

export interface Record_ {
  seq: number;
  stream: 'stdout' | 'stderr';
  line: string;
  time: string;
  /** A detached job's line: the byte offset just after it in its `stdout`/`stderr` file (where a new agent resumes). */
  end?: number;
}

/** What `job.json` holds: the spec first (before the spawn), then the pid and its start time. */
export interface JobFile {
  spec: RuntimeJobSpec;
  pid?: number;
  /** The pid's start time in /proc (proc-stat.ts): tells the job from a later process with its pid. */
  startTime?: string;
  startedAt?: string;
  /** Outlives its agent (no stdin): adopted by the next one. */
  detached?: boolean;
}

/** How the spawned process ended, as Node saw it; undefined when it was not our child (adopted). */
export type RawExit = { code: number | null; signal: NodeJS.Signals | null } | undefined;

export interface ProcJob {
  spec: RuntimeJobSpec;
  dir: string;
  pgid: number;
  startedAt: string;
  detached: boolean;
  exit?: ExitStatus;
  done: Promise<ExitStatus>;
  killed: boolean;
  oom: boolean;
  seq: number;
  out: WriteStream;
  /** Lines written to `out` whose write has not completed yet. */
  unflushed: Record_[];
  lines: EventFanout<Record_>;
  /** A detached job's output files being followed. */
  tails: OutputTail[];
  /** Stops watching a detached job that keeps running (the runtime closes). */
  release?: () => void;
}

/** Append a line to the job's line log (`output.ndjson`) and publish it. */
export function recordLine(proc: ProcJob, stream: 'stdout' | 'stderr', line: string, end?: number): void {
  const r: Record_ = { seq: ++proc.seq, stream, line, time: new Date().toISOString(), ...(end === undefined ? {} : { end }) };
  proc.unflushed.push(r);
  proc.out.write(JSON.stringify(r) + '\n', () => {
    const i = proc.unflushed.indexOf(r);
    if (i !== -1) proc.unflushed.splice(i, 1);
  });
  proc.lines.publish(r);
}

export function viewOf(proc: ProcJob): RuntimeJob {
  const job: RuntimeJob = { spec: proc.spec, running: proc.exit === undefined, startedAt: proc.startedAt };
  if (proc.exit) job.exit = { ...proc.exit };
  return job;
}

/** The exit status a detached job's wrapper wrote, or `unknown` (code -1) without one (the wrapper was killed too). */
export async function exitFromFile(dir: string, reason: ExitStatus['reason']): Promise<ExitStatus> {
  const text = await readFile(join(dir, 'exit'), 'utf8').catch(() => undefined);
  if (text !== undefined && /^\d+$/.test(text.trim())) return { code: Number(text.trim()), reason };
  return reason === 'exit' ? { code: -1, reason: 'unknown' } : { code: 137, reason };
}

export function keyOf(hostId: string, jobId: string): string {
  return `${hostId}/${jobId}`;
}

export function toLine(r: Record_): LogLine {
  return { stream: r.stream, line: r.line, time: r.time };
}

export function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // the group is gone already
  }
}

export function killProcess(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
}
