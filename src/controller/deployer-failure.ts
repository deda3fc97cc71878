/** Why a deploy step failed: the part of a job's output that tells why, and the failure messages. */
import { DeployFailedError } from './errors.js';
import type { JobRunner } from './jobs.js';
import type { App, Job } from './types.js';
import type { BootDiagnosis } from './deployer-strategy.js';

export const DEPLOY_FAILURE_DEFAULTS = Object.freeze({
  /** How many of a failed job's last output lines are searched for the start of its error. */
  scanLines: 100,
  /** Most output lines a failure message shows. */
  outputLines: 30,
});

/** Lines that start an error report: node's `file:line` (its source line and caret follow), `node:internal/...:N`, a `XxxError:`, a Python traceback, a Go panic, a Ruby `file:N:in`. */
const ERROR_START = [/^\S+:\d+(:\d+)?$/, /^(Uncaught )?([A-Z]\w*)?(Error|Exception)\b/, /^Traceback \(most recent call last\):/, /^panic: /, /^\S+:\d+:in /];

/** Start lines at most this many lines apart belong to one error report. */
const ERROR_BLOCK_GAP = 6;

/**
 * The part of a failed job's output that tells why: from the first line of its error report (a
 * `file:line` header with its caret, a `SyntaxError:` line, a traceback) to the end, at most
 * `max` lines (the error's start is kept, the rest cut with a `… N more lines` line); without a
 * recognisable error, the last `max` lines. Trailing blank lines are dropped.
 */
export function errorExcerpt(lines: readonly string[], max: number = DEPLOY_FAILURE_DEFAULTS.outputLines): string[] {
  let end = lines.length;
  while (end > 0 && (lines[end - 1] ?? '').trim() === '') end--;
  const out = lines.slice(0, end);
  const starts = out.flatMap((l, i) => (ERROR_START.some((re) => re.test(l)) ? [i] : []));
  if (starts.length === 0) return out.slice(-max);
  // The last error report begins at the last start line, or at the start lines just before it
  // (node's `file:line` comes 4 lines before its `SyntaxError:`).
  let k = starts.length - 1;
  while (k > 0 && (starts[k] as number) - (starts[k - 1] as number) <= ERROR_BLOCK_GAP) k--;
  const block = starts[k] as number;
  if (out.length - block <= max) return out.slice(starts.find((i) => out.length - i <= max) ?? block);
  // Too long to show whole: its start, cut.
  const shown = out.slice(block, block + max - 1);
  const more = out.length - block - shown.length;
  return [...shown, `… ${more} more line${more === 1 ? '' : 's'}`];
}

/** Where a failure's job output and boot diagnosis come from. */
export type FailureSource = Pick<JobRunner, 'logs'> & Partial<BootDiagnosis>;

/** The part of a job's last output that tells why it failed (see {@link errorExcerpt}); none when it cannot be read. */
async function lastOutput(jobs: FailureSource, appId: string, jobId: string): Promise<string[]> {
  try {
    const lines: string[] = [];
    for await (const line of await jobs.logs(appId, { jobId, lines: DEPLOY_FAILURE_DEFAULTS.scanLines })) lines.push(line.msg);
    return errorExcerpt(lines);
  } catch {
    return [];
  }
}

/** A failure naming `job`: `headline`, then `hints`, the job's last output and where to read all of it. */
export async function jobFailure(jobs: FailureSource, app: App, job: Job, headline: string, hints: string[] = []): Promise<DeployFailedError> {
  const output = await lastOutput(jobs, app.id, job.id);
  // Two jobs of a type on one host, both on a fixed port: the second dies of EADDRINUSE.
  if (hints.length === 0 && output.some((l) => l.includes('EADDRINUSE'))) {
    hints = [`Its port was already in use (EADDRINUSE): does the app listen on $PORT? Every job gets a PORT of its own; a fixed port clashes as soon as two jobs share a host.`];
  }
  const lines = [headline, ...hints.map((h) => `${INDENT}${h}`)];
  if (output.length > 0) lines.push(`${INDENT}Its last output:`, ...output.map((l) => `${INDENT}${l}`), `${INDENT}Its whole output: flynn log -a ${app.name} ${job.id}`);
  else lines.push(`${INDENT}It wrote no output.`);
  return new DeployFailedError(lines.join('\n'), { detail: { jobId: job.id, output } });
}

/** A new job that did not start (`failed`): its host's one line as the message (e.g. a damaged slug), else as {@link jobFailure}. */
export async function startFailure(jobs: FailureSource, app: App, job: Job): Promise<DeployFailedError> {
  const name = `${job.type} job ${job.id} of the new release`;
  const output = await lastOutput(jobs, app.id, job.id);
  if (output.length === 1) return new DeployFailedError(`${name} failed to start: ${output[0] as string}`, { detail: { jobId: job.id, output } });
  return jobFailure(jobs, app, job, `${name} failed`);
}

/** The failure of a deploy step whose jobs were not all up within the boot timeout. */
export async function bootTimeout(jobs: FailureSource, app: App, seen: Job[], counts: Record<string, number>, timeoutMs: number): Promise<DeployFailedError> {
  const within = `within ${formatSeconds(timeoutMs)} (boot timeout)`;
  const late = seen.find((j) => j.state !== 'up' && (counts[j.type] ?? 0) > countUp(seen, j.type));
  if (!late) {
    const up = Object.keys(counts).map((t) => `${t}=${countUp(seen, t)}`).join(' ');
    return new DeployFailedError(`the new release's jobs were not started ${within}: want ${describeCounts(counts)}, up ${up}; is there a host with room for them? (flynn ps, and the scheduler's log)`);
  }
  const boot = await jobs.inspectBoot?.(app.id, late.id).catch(() => undefined);
  jobs.markBootFailed?.(app.id, late.id);
  const name = `${late.type} job ${late.id} of the new release`;
  if (boot?.running && boot.port !== undefined) {
    return jobFailure(jobs, app, late, `${name} did not answer on $PORT (${boot.port}) ${within}`, [
      `Does the app listen on $PORT? Its ${late.type} process must listen on the port in the PORT environment variable (${boot.port} for this job), not on a port of its own choosing.`,
    ]);
  }
  if (boot && !boot.running) return jobFailure(jobs, app, late, `${name} was still starting after ${formatSeconds(timeoutMs)} (boot timeout)`);
  return jobFailure(jobs, app, late, `${name} was not up ${within}`);
}

/** Continuation lines of a failure message line up under its text (the pusher sees ` !     ` before the first). */
const INDENT = '       ';

export function formatSeconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}

export function countUp(jobs: Job[], type: string): number {
  return jobs.filter((j) => j.type === type && j.state === 'up').length;
}

export function describeCounts(counts: Record<string, number>): string {
  return Object.entries(counts).map(([t, n]) => `${t}=${n}`).join(' ') || 'no processes';
}
