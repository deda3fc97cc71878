/**
 * The logs of an app's jobs across hosts: the history of every job merged by time, then (with
 * `follow`) the new lines of these and of every job the scheduler starts later.
 */
import { AsyncQueue } from '../common/async-queue.js';
import { childSignal } from '../common/lifecycle.js';
import { ObjectNotFoundError } from '../controller/errors.js';
import type { LogQuery } from '../controller/jobs.js';
import type { LogLine } from '../controller/types.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import type { ScheduledJob } from '../scheduler/types.js';
import type { HostClients } from './host-clients.js';
import { isNotFound, notStarted, waitHostJob } from './host-job.js';
import { type EndedJobs, scheduledJobs, toLogLine } from './job-view.js';

export interface AppLogsOptions {
  scheduler: Pick<Scheduler, 'view' | 'events'>;
  hosts: HostClients;
  ended: EndedJobs;
  /** A job the scheduler and `ended` do not know, as a host keeps it since it ended (ended-on-hosts.ts). */
  kept?: (jobId: string) => Promise<ScheduledJob | undefined>;
  /** How long a job just placed may take to appear on its host, in ms. */
  appearMs: number;
  /** Ends every read (the runner closed). */
  signal: AbortSignal;
}

/**
 * The history of the app's jobs (or one job's), merged by time; with `follow`, then their new
 * lines, attaching every job of the app (and `type`) the scheduler starts later (a scale, a
 * deploy, a restart, a one-off job) from its first line, until the caller aborts or stops
 * iterating (a follow of one job ends with that job).
 */
export async function appLogs(o: AppLogsOptions, appId: string, query: LogQuery): Promise<AsyncIterable<LogLine>> {
  // Jobs that ended a while ago (crashed, failed to boot, stopped) are gone from the scheduler but their logs tell why.
  const scheduled = scheduledJobs(o.scheduler.view(), appId);
  const known = new Set(scheduled.map((j) => j.id));
  const ended = o.ended.of(appId).map((e) => e.job).filter((j) => !known.has(j.id));
  let jobs = [...scheduled, ...ended];
  if (query.jobId !== undefined) {
    jobs = jobs.filter((j) => j.id === query.jobId);
    const kept = jobs.length === 0 ? await o.kept?.(query.jobId) : undefined;
    if (kept) jobs = [kept];
    if (jobs.length === 0) throw new ObjectNotFoundError('job', query.jobId);
  }
  if (query.type !== undefined) jobs = jobs.filter((j) => j.type === query.type);
  // One listener on the caller's signal and on the runner's own (childSignal), removed when the read is over.
  const abort = new AbortController();
  const parents = [query.signal, o.signal].filter((s): s is AbortSignal => s !== undefined).map((s) => childSignal(s));
  const onAbort = () => queue.end();
  // Ended by either side (or failed): stop the host streams and leave the caller's signal alone.
  const queue = new AsyncQueue<LogLine>(() => {
    for (const p of parents) {
      p.signal.removeEventListener('abort', onAbort);
      p.release();
    }
    abort.abort();
  });
  for (const p of parents) p.signal.addEventListener('abort', onAbort, { once: true });
  if (parents.some((p) => p.signal.aborted)) queue.end();
  const signal = abort.signal;

  // History of every job, merged by time.
  const read = query.follow ? new Map<string, LogLine[]>() : undefined;
  const history: LogLine[] = [];
  try {
    await Promise.all(
      jobs.map(async (job) => {
        const got: LogLine[] = [];
        read?.set(job.id, got);
        try {
          for await (const l of o.hosts.get(job.hostId).logs(job.id, { signal, ...(query.lines === undefined ? {} : { lines: query.lines }) })) got.push(toLogLine(job, l));
        } catch (err) {
          // A job (or host) that went away has no more lines; a follow attaches the job afresh.
          // A job still starting may have no output on its host yet.
          if (read) read.delete(job.id);
          else if (!isNotFound(err) && !signal.aborted && job.state !== 'pending' && job.state !== 'starting') throw err;
        }
        history.push(...got);
      }),
    );
  } catch (err) {
    queue.end();
    throw err;
  }
  history.sort((a, b) => a.time.localeCompare(b.time));
  for (const l of query.lines === undefined ? history : history.slice(-query.lines)) queue.push(l);
  if (!read) {
    queue.end();
    return queue;
  }

  const attached = new Set<string>();
  const attach = (job: ScheduledJob, after?: LogLine[]): Promise<void> => {
    if (attached.has(job.id) || signal.aborted) return Promise.resolve();
    attached.add(job.id);
    return followJob(o, job, queue, signal, after).catch(() => {
      // A job (or host) that went away has no more lines.
    });
  };
  const initial = jobs.map((job) => attach(job, read.get(job.id)));
  if (query.jobId !== undefined) {
    void Promise.all(initial).then(() => queue.end());
    return queue;
  }
  const wanted = (j: ScheduledJob) => j.app === appId && (query.type === undefined || j.type === query.type);
  // Subscribed before the view is read again: a job placed meanwhile is in one or the other. A new
  // leader's jobs are in its view once it leads.
  const events = o.scheduler.events({ types: ['placed', 'restarted', 'leader'], signal });
  const rescan = () => {
    for (const j of scheduledJobs(o.scheduler.view(), appId)) if (wanted(j)) void attach(j);
  };
  rescan();
  void (async () => {
    for await (const event of events) {
      if (event.type === 'leader') rescan();
      else if ((event.type === 'placed' || event.type === 'restarted') && wanted(event.job)) void attach(event.job);
    }
  })().catch(() => {});
  return queue;
}

/**
 * Push a job's new lines until it ends or `signal` aborts. `after` is the history already read
 * (its lines are skipped); without it the job is read from its first line, once it has started.
 */
async function followJob(o: AppLogsOptions, job: ScheduledJob, queue: AsyncQueue<LogLine>, signal: AbortSignal, after?: LogLine[]): Promise<void> {
  const client = o.hosts.get(job.hostId);
  if (!after || after.length === 0) {
    // A job just placed is not on its host yet, and a pending one has no output to follow yet.
    const started = await waitHostJob(client, job.id, (j) => !notStarted(j), { signal, appearMs: o.appearMs });
    if (started.state === 'failed') return;
  }
  // The tail as long as the history read, which starts at or before its last line: skip up to that line.
  const last = after?.at(-1);
  let skipping = last ? (after?.length ?? 0) : 0;
  let held: LogLine[] = [];
  try {
    for await (const l of client.logs(job.id, { signal, follow: true, ...(skipping > 0 ? { lines: skipping } : {}) })) {
      const line = toLogLine(job, l);
      if (skipping > 0 && last) {
        if (line.time === last.time && line.stream === last.stream && line.msg === last.msg) {
          skipping = 0;
          held = [];
          continue;
        }
        held.push(line);
        if (--skipping > 0) continue;
        // The whole tail is newer than the history (many lines came in between): all new.
        for (const h of held) queue.push(h);
        held = [];
        continue;
      }
      queue.push(line);
    }
  } finally {
    for (const h of held) queue.push(h);
  }
}
