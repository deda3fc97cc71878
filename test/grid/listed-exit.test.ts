/**
 * `listJobs(app, { all: true })` (`flynn ps --all`, a failed deploy's headline) gives an ended job
 * the exit status its host recorded, also while the scheduler still shows the job: the moment a
 * deploy fails is that moment.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { SchedulerJobRunner } from '../../src/grid/job-runner.js';
import type { Job as HostJob } from '../../src/host/types.js';
import type { ScheduledJob, SchedulerView } from '../../src/scheduler/types.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()?.();
});

/** A runner whose scheduler shows job j1 in `state`, on a host that recorded it crashed with exit 3. */
async function runnerShowing(state: ScheduledJob['state']): Promise<SchedulerJobRunner> {
  const createdAt = Date.parse('2026-12-05T19:00:00.000Z');
  const crashed: HostJob = { id: 'j1', hostId: 'h1', app: 'app', release: 'r1', type: 'web', state: 'crashed', limits: {}, boundPorts: [], exit: { code: 3, reason: 'exit' }, createdAt: '2026-12-05T19:00:00.000Z', updatedAt: '2026-12-05T19:00:01.000Z' } as unknown as HostJob;
  // The host agent's `GET /jobs?ended=1`: the job, ended, with its exit.
  const host = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(req.url?.includes('ended=1') ? [crashed] : []));
  });
  await new Promise<void>((resolve) => host.listen(0, '127.0.0.1', resolve));
  cleanup.push(() => new Promise<void>((resolve) => host.close(() => resolve())));
  const shown: ScheduledJob = { id: 'j1', hostId: 'h1', app: 'app', release: 'r1', type: 'web', state, oneOff: false, restarts: 0, memoryBytes: 0, createdAt };
  const view = { hosts: [{ id: 'h1', addr: `127.0.0.1:${(host.address() as AddressInfo).port}` }], formations: [{ app: 'app', processes: [{ jobs: [shown] }] }], oneOff: [] } as unknown as SchedulerView;
  const scheduler = {
    view: () => view,
    // No events: the stream ends when the runner stops.
    events: ({ signal }: { signal?: AbortSignal }) => ({
      [Symbol.asyncIterator]: () => ({
        next: () => new Promise<IteratorResult<never>>((resolve) => signal?.addEventListener('abort', () => resolve({ done: true, value: undefined }), { once: true })),
      }),
    }),
  };
  const runner = new SchedulerJobRunner({ scheduler: scheduler as never, hostKey: 'k' });
  cleanup.push(() => runner.close());
  return runner;
}

describe('job runner: the exit status of an ended job', () => {
  it('comes from its host while the scheduler still shows the job', async () => {
    const runner = await runnerShowing('crashed');
    expect(await runner.listJobs('app', { all: true })).toEqual([expect.objectContaining({ id: 'j1', state: 'crashed', exit: { code: 3, reason: 'exit' }, endedAt: '2026-12-05T19:00:01.000Z' })]);
    // Without `all` the hosts are not asked: the scheduler's view as it is.
    expect((await runner.listJobs('app'))[0]?.exit).toBeUndefined();
  });

  it('comes from its host with the end while the scheduler has not heard of the end yet (`flynn run` said the exit already)', async () => {
    const runner = await runnerShowing('up');
    expect(await runner.listJobs('app', { all: true })).toEqual([expect.objectContaining({ id: 'j1', state: 'crashed', exit: { code: 3, reason: 'exit' }, endedAt: '2026-12-05T19:00:01.000Z' })]);
  });
});
