/** `flynn scale`'s wait: until the release runs the asked counts, all up, or one of its new jobs fails to start. */
import { until, WaitTimeoutError } from '../common/until.js';
import type { ControllerClient } from '../controller/client.js';
import type { Formation, Job } from '../controller/types.js';
import { CliError } from './errors.js';

/** How long `flynn scale` waits for the jobs, in ms. */
export const SCALE_WAIT_MS = 60_000;

/**
 * Resolve once every type of `processes` runs exactly its count of live jobs of `f`'s release, all
 * up. A job of the release that fails to start meanwhile (one not listed as failed before the wait)
 * ends the wait at once with why, as its host said it (its log line: e.g. a damaged slug); the
 * timeout ends it with the counts. `asked` is how the counts are shown (`web=3`).
 */
export async function waitScaled(client: ControllerClient, app: string, f: Formation, processes: Record<string, number>, asked: string): Promise<void> {
  let now: { type: string; want: number; live: number; up: number }[] = [];
  let before: Set<string> | undefined;
  let failed: Job | undefined;
  const scaled = (jobs: Job[]) => {
    const mine = jobs.filter((j) => j.releaseId === f.releaseId && Object.hasOwn(processes, j.type));
    before ??= new Set(mine.filter((j) => j.state === 'failed').map((j) => j.id));
    failed = mine.find((j) => j.state === 'failed' && !before?.has(j.id));
    const live = mine.filter((j) => j.state === 'up' || j.state === 'starting');
    now = Object.keys(processes).map((t) => ({ type: t, want: f.processes[t] ?? 0, live: live.filter((j) => j.type === t).length, up: live.filter((j) => j.type === t && j.state === 'up').length }));
    return failed !== undefined || now.every((c) => c.live === c.want && c.up === c.want);
  };
  await until((signal) => client.watchJobs(app, { signal }), scaled, { timeoutMs: SCALE_WAIT_MS }).catch((err: unknown) => {
    if (!(err instanceof WaitTimeoutError)) throw err;
    const where = now.map((c) => `${c.type}: ${c.up} up of ${c.want}`).join(', ');
    throw new CliError(`scaled ${app} to ${asked}, but after ${SCALE_WAIT_MS / 1000} s ${where} (see flynn ps and flynn log)`);
  });
  if (failed) {
    const why = await firstLine(client, app, failed.id);
    throw new CliError(`scaled ${app} to ${asked}, but ${failed.type} job ${failed.id} failed to start: ${why ?? `see flynn log -a ${app} ${failed.id}`}`);
  }
}

/** A job's first log line (a job that failed to start: why), if it can be read. */
async function firstLine(client: ControllerClient, app: string, job: string): Promise<string | undefined> {
  try {
    for await (const l of client.logs(app, { job })) return l.msg;
  } catch {
    // not readable: the message points at flynn log
  }
  return undefined;
}
