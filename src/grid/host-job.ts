import { type Clock, systemClock } from '../common/clock.js';
import { childSignal } from '../common/lifecycle.js';
import { until } from '../common/until.js';
import { watchState } from '../common/watch.js';
import { ObjectNotFoundError } from '../controller/errors.js';
import type { HostClient } from '../host/client.js';
import type { Job as HostJob } from '../host/types.js';

export function isNotFound(err: unknown): boolean {
  return (err as { kind?: string }).kind === 'not_found';
}

/** Whether a job on its host has not started yet (`starting` covers the artifact download). */
export function notStarted(job: HostJob): boolean {
  return job.state === 'pending' || job.state === 'starting';
}

/**
 * A job as its host sees it, now and after each of its changes (the agent's `/events`; re-read
 * after a dropped stream). `undefined` while the job is not on its host yet (just placed).
 */
export function watchHostJob(client: HostClient, id: string, options: { signal?: AbortSignal } = {}): AsyncIterable<HostJob | undefined> {
  return watchState(
    (signal) =>
      client.getJob(id, { signal }).catch((err: unknown) => {
        if (isNotFound(err)) return undefined;
        throw err;
      }),
    async (signal) => {
      const events = await client.openEvents({ signal });
      return (async function* () {
        for await (const e of events) if (e.job.id === id) yield e;
      })();
    },
    options,
  );
}

export interface WaitHostJobOptions {
  signal?: AbortSignal;
  /** How long the job may take to appear on its host, in ms; then a NotFoundError. */
  appearMs: number;
  clock?: Clock;
}

/** Wait until the job, on its host, satisfies `predicate`. */
export async function waitHostJob(client: HostClient, id: string, predicate: (job: HostJob) => boolean, options: WaitHostJobOptions): Promise<HostJob> {
  const wait = new AbortController();
  const parent = options.signal ? childSignal(options.signal) : undefined;
  parent?.signal.addEventListener('abort', () => wait.abort(parent.signal.reason), { once: true });
  const appeared = new AbortController();
  void (options.clock ?? systemClock).sleep(options.appearMs, appeared.signal).then(
    () => wait.abort(new ObjectNotFoundError('job', id)),
    () => {},
  );
  try {
    const job = await until(
      (signal) => watchHostJob(client, id, { signal }),
      (j) => {
        if (j) appeared.abort();
        return j !== undefined && predicate(j);
      },
      { signal: wait.signal },
    );
    return job as HostJob;
  } finally {
    appeared.abort();
    parent?.release();
  }
}
