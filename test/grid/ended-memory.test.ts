/**
 * The job runner's memory of ended jobs (grid/job-view.ts) filled after the fact, as after a
 * platform restart: each job counts from its own end time, so it is listed and kept for what is
 * left of its time, and the oldest go first past the cap.
 */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/common/clock.js';
import { EndedJobs } from '../../src/grid/job-view.js';
import type { ScheduledJob } from '../../src/scheduler/types.js';

const job = (id: string, app = 'a'): ScheduledJob => ({ id, hostId: 'h1', app, release: 'r1', type: 'web', state: 'crashed', oneOff: false, restarts: 0, memoryBytes: 0, createdAt: 0 });
const ids = (memory: EndedJobs, listed = false) => memory.of('a', { listed }).map((e) => e.job.id);

describe('EndedJobs.recall', () => {
  it('lists a recalled crash for what is left of listedMs since its end, and keeps it keptMs since its end', async () => {
    const clock = new ManualClock(1_000_000);
    const memory = new EndedJobs({ listedMs: 30_000, keptMs: 300_000, max: 100, clock });
    const now = clock.now();
    memory.recall([
      { job: job('ten-seconds-ago'), state: 'crashed', at: now - 10_000, listed: true },
      { job: job('a-minute-ago'), state: 'crashed', at: now - 60_000, listed: true },
      { job: job('stopped'), state: 'down', at: now - 1_000, listed: false },
      { job: job('too-old'), state: 'crashed', at: now - 301_000, listed: true },
    ]);
    expect(ids(memory, true)).toEqual(['ten-seconds-ago']);
    expect(ids(memory)).toEqual(['a-minute-ago', 'ten-seconds-ago', 'stopped']);
    await clock.advance(20_001);
    expect(ids(memory, true)).toEqual([]);
    expect(ids(memory)).toEqual(['a-minute-ago', 'ten-seconds-ago', 'stopped']);
  });

  it('leaves a job it remembers already as it is, and drops the oldest end first past the cap', () => {
    const clock = new ManualClock(1_000_000);
    const memory = new EndedJobs({ listedMs: 30_000, keptMs: 300_000, max: 2, clock });
    memory.remember(job('live'), 'crashed', true);
    memory.recall([
      { job: job('live'), state: 'down', at: clock.now() - 100_000, listed: false },
      { job: job('older'), state: 'crashed', at: clock.now() - 5_000, listed: true },
      { job: job('oldest'), state: 'crashed', at: clock.now() - 9_000, listed: true },
    ]);
    expect(memory.get('live')).toMatchObject({ state: 'crashed', listed: true, at: clock.now() });
    expect(ids(memory)).toEqual(['older', 'live']);
  });
});
