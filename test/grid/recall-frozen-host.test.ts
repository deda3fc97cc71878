/**
 * After a platform restart the job runner asks each host once for the jobs it keeps as ended
 * (grid/job-runner.ts). A host that accepts connections but never answers (frozen, overloaded)
 * must hold up one `ps` for `recallWaitMs`, not every `ps` for the HTTP client's own timeout.
 */
import { createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/common/clock.js';
import { SCHEDULER_JOB_RUNNER_DEFAULTS, SchedulerJobRunner } from '../../src/grid/job-runner.js';
import type { SchedulerView } from '../../src/scheduler/types.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()?.();
});

describe('job runner: ended jobs of a host that does not answer', () => {
  it('lists the jobs after recallWaitMs the first time, and at once after that', async () => {
    const sockets = new Set<Socket>();
    const frozen = createServer((s) => void sockets.add(s));
    await new Promise<void>((resolve) => frozen.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise<void>((resolve) => (sockets.forEach((s) => s.destroy()), frozen.close(() => resolve()))));
    const view = { hosts: [{ id: 'h1', addr: `127.0.0.1:${(frozen.address() as AddressInfo).port}` }], formations: [], oneOff: [] } as unknown as SchedulerView;
    const scheduler = {
      view: () => view,
      runJob: () => Promise.reject(new Error('not in this test')),
      // No events: the stream ends when the runner stops.
      events: ({ signal }: { signal?: AbortSignal }) => ({
        [Symbol.asyncIterator]: () => ({
          next: () => new Promise<IteratorResult<never>>((resolve) => signal?.addEventListener('abort', () => resolve({ done: true, value: undefined }), { once: true })),
        }),
      }),
    };
    const clock = new ManualClock(1_000_000);
    const runner = new SchedulerJobRunner({ scheduler: scheduler as never, hostKey: 'k', clock });
    cleanup.push(() => runner.close());

    let listed = false;
    const first = runner.listJobs('app').then((jobs) => ((listed = true), jobs));
    await clock.advance(SCHEDULER_JOB_RUNNER_DEFAULTS.recallWaitMs - 1);
    expect(listed).toBe(false);
    await clock.advance(1);
    expect(await first).toEqual([]);
    // The host still has not answered: the next call does not wait for it again.
    expect(await runner.listJobs('app')).toEqual([]);
  });
});
