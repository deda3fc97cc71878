/** The client's waits: for a deployment to complete or fail, and for a scale's jobs to be up and held (or a started one to crash). */
import { UnavailableError } from '../common/errors.js';
import { until, WaitTimeoutError } from '../common/until.js';
import { childSignal, settlesWithin } from '../common/lifecycle.js';
import { DeployFailedError, ScaleFailedError, ScaleTimeoutError } from './errors.js';
import { crashLine, SCALE_WAIT_DEFAULTS, ScaleProgress, type ScaleVerdict } from './scale-wait.js';
import type { Deployment, Formation, Job, LogLine } from './types.js';

/** The calls of the controller's API the waits make. */
export interface WaitingClient {
  watchDeployment(app: string, id: string, options?: { signal?: AbortSignal }): AsyncIterable<Deployment>;
  listJobs(app: string, options?: { all?: boolean }): Promise<Job[]>;
  scale(app: string, processes: Record<string, number>): Promise<Formation>;
  watchJobs(app: string, options?: { signal?: AbortSignal }): AsyncIterable<Job[]>;
  logs(app: string, query?: { job?: string; lines?: number }): AsyncIterable<LogLine>;
}

/** Wait until the deployment completes; throws a DeployFailedError when it failed. */
export async function waitForDeployment(client: WaitingClient, app: string, id: string, options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<Deployment> {
  const timeoutMs = options.timeoutMs ?? 120_000;
  let last: Deployment | undefined;
  const settled = (d: Deployment) => ((last = d), d.status === 'complete' || d.status === 'failed');
  let d: Deployment;
  try {
    d = await until((signal) => client.watchDeployment(app, id, { signal }), settled, { timeoutMs, ...(options.signal ? { signal: options.signal } : {}) });
  } catch (err) {
    if (err instanceof WaitTimeoutError) throw new DeployFailedError(`deployment ${id} still ${last?.status ?? 'pending'} after ${timeoutMs} ms`, { detail: last });
    throw err;
  }
  if (d.status === 'failed') throw new DeployFailedError(d.error ?? `deployment ${id} failed`, { detail: d });
  return d;
}

export async function scaleAndWait(client: WaitingClient, app: string, processes: Record<string, number>, options: { signal?: AbortSignal; timeoutMs?: number; holdMs?: number } = {}): Promise<{ formation: Formation; upMs: number }> {
  const d = SCALE_WAIT_DEFAULTS;
  const timeoutMs = options.timeoutMs ?? d.timeoutMs;
  const started = Date.now();
  const before = new Set((await client.listJobs(app)).map((j) => j.id));
  const formation = await client.scale(app, processes);
  const progress = new ScaleProgress(formation, Object.keys(processes), before, { holdMs: options.holdMs ?? d.holdMs, gatherMs: d.gatherMs });
  const verdict = await settleScale(client, app, progress, started + timeoutMs, options.signal);
  if (verdict.kind === 'up') return { formation, upMs: verdict.upAt - started };
  if (verdict.kind === 'waiting') {
    const where = verdict.counts.map((c) => `${c.type}: ${c.up} up of ${c.want}`).join(', ');
    throw new ScaleTimeoutError(`after ${timeoutMs / 1000} s ${where}`, { detail: { counts: verdict.counts } });
  }
  const last = verdict.jobs.at(-1) as Job;
  // Its exit status is what its host recorded (listed with `all`).
  const recorded = (await client.listJobs(app, { all: true }).catch(() => [])).find((j) => j.id === last.id) ?? last;
  const output: LogLine[] = [];
  try {
    for await (const l of client.logs(app, { job: last.id, lines: 50 })) output.push(l);
  } catch {
    // Its output is gone: the line says so.
  }
  const message = crashLine(app, verdict.type, verdict.jobs, { job: recorded, output });
  throw new ScaleFailedError(message, { detail: { type: verdict.type, crashed: verdict.jobs.map((j) => j.id), jobId: last.id, ...(recorded.exit ? { exit: recorded.exit } : {}), output: output.slice(-10).map((l) => l.msg) } });
}

/** Feed the app's jobs to `progress` (again at the times it asks) until it is decided or `deadline` passes (its last `waiting`). */
async function settleScale(client: WaitingClient, app: string, progress: ScaleProgress, deadline: number, signal?: AbortSignal): Promise<ScaleVerdict> {
  const stop = new AbortController();
  const parent = signal ? childSignal(signal) : undefined;
  parent?.signal.addEventListener('abort', () => stop.abort(parent.signal.reason), { once: true });
  const iterator = client.watchJobs(app, { signal: stop.signal })[Symbol.asyncIterator]();
  try {
    const read = () => {
      const n = iterator.next();
      n.catch(() => {}); // awaited below, unless the wait ends first
      return n;
    };
    let next = read();
    let jobs: Job[] | undefined;
    let verdict: ScaleVerdict = { kind: 'waiting', counts: [] };
    for (;;) {
      if (jobs) verdict = progress.see(jobs, Date.now());
      if (verdict.kind !== 'waiting' || Date.now() >= deadline) return verdict;
      const wake = Math.min(deadline, verdict.wakeAt ?? deadline);
      if (!(await settlesWithin(next, Math.max(0, wake - Date.now())))) continue;
      const got = await next;
      if (got.done) throw stop.signal.aborted ? stop.signal.reason : new UnavailableError('FLYNN_ERR_HTTP_UNREACHABLE', `the job stream of ${app} ended`);
      jobs = got.value;
      next = read();
    }
  } finally {
    stop.abort();
    parent?.release();
    void Promise.resolve(iterator.return?.()).catch(() => {});
  }
}
