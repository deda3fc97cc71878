/** The pure planner's rebalance moves and the recovery of owed crash restarts. */
import { describe, expect, it } from 'vitest';
import { BACKOFF_DEFAULTS } from '../../src/scheduler/backoff.js';
import { plan, type PlanInput } from '../../src/scheduler/reconcile.js';
import { recoverRestarts } from '../../src/scheduler/recovery.js';
import { formationKey, type Formation, type ScheduledJob } from '../../src/scheduler/types.js';
import { validateFormation } from '../../src/scheduler/validate.js';
import { webFormation } from './support.js';

const GiB = 1024 ** 3;
const host = (id: string, extra: { tags?: Record<string, string>; memoryBytes?: number } = {}) => ({ id, addr: `${id}:1`, tags: extra.tags ?? {}, capacity: { memoryBytes: extra.memoryBytes ?? 0 } });
const hosts = ['h1', 'h2', 'h3'].map((id) => host(id));
const job = (id: string, hostId: string, state: ScheduledJob['state'], createdAt: number, extra: Partial<ScheduledJob> = {}): ScheduledJob => ({
  id, hostId, app: 'shop', release: 'v1', type: 'web', state, oneOff: false, restarts: 0, memoryBytes: 0, createdAt, ...extra,
});
const formations = (...fs: Formation[]) => new Map(fs.map((f) => [formationKey(f.app, f.release), validateFormation(f)]));
const spread = (counts: Record<string, number>) => Object.entries(counts).flatMap(([h, n]) => Array.from({ length: n }, (_, i) => job(`${h}-${i}`, h, 'up', i + (h === 'h1' ? 10 : 0))));
const input = (over: Partial<PlanInput>): PlanInput => ({
  formations: formations(webFormation(4)), hosts, placeable: true, jobs: [], restarts: [], now: 1000, rebalanceTo: new Set(['h1', 'h2', 'h3']), ...over,
});

describe('planner rebalancing', () => {
  it('moves one job from the fullest host to the emptiest settled one when they differ by 2 or more', () => {
    const p = plan(input({ jobs: spread({ h1: 2, h2: 2 }) }));
    expect(p.stops).toEqual([]);
    expect(p.starts).toMatchObject([{ type: 'web', hostId: 'h3', moveFrom: 'h1' }]);
  });

  it('leaves a difference of 1, an unsettled host, rebalance off and jobs not all up alone', () => {
    expect(plan(input({ formations: formations(webFormation(3)), jobs: spread({ h1: 2, h2: 1 }), rebalanceTo: new Set(['h1', 'h2', 'h3']) })).starts).toMatchObject([{ hostId: 'h3' }]);
    expect(plan(input({ formations: formations(webFormation(4)), jobs: spread({ h1: 2, h2: 1, h3: 1 }) })).starts).toEqual([]);
    expect(plan(input({ jobs: spread({ h1: 2, h2: 2 }), rebalanceTo: new Set(['h1', 'h2']) })).starts).toEqual([]);
    const { rebalanceTo: _off, ...off } = input({ jobs: spread({ h1: 2, h2: 2 }) });
    expect(plan(off).starts).toEqual([]);
    const starting = spread({ h1: 2, h2: 2 }).map((j, i) => (i === 0 ? { ...j, state: 'starting' as const } : j));
    expect(plan(input({ jobs: starting })).starts).toEqual([]);
  });

  it('never moves to a host without the tags or the memory, nor an omni type', () => {
    const tagged = [host('h1', { tags: { disk: 'ssd' } }), host('h2', { tags: { disk: 'ssd' } }), host('h3')];
    expect(plan(input({ hosts: tagged, formations: formations(webFormation(4, { tags: { web: { disk: 'ssd' } } })), jobs: spread({ h1: 2, h2: 2 }) })).starts).toEqual([]);
    const small = [host('h1'), host('h2'), host('h3', { memoryBytes: GiB / 2 })];
    const mem = spread({ h1: 2, h2: 2 }).map((j) => ({ ...j, memoryBytes: GiB }));
    expect(plan(input({ hosts: small, formations: formations(webFormation(4, { memory: { web: GiB } })), jobs: mem })).starts).toEqual([]);
    const omni = formations(webFormation(2, { omni: ['web'] }));
    expect(plan(input({ formations: omni, jobs: spread({ h1: 2, h2: 2, h3: 2 }) })).starts).toEqual([]);
  });

  it('counts a move under way extra until its job is up, then stops the newest job on the source host', () => {
    const jobs = spread({ h1: 2, h2: 2 });
    const moved = job('new', 'h3', 'starting', 50);
    const move = { formationKey: 'shop/v1', type: 'web', fromHostId: 'h1', toHostId: 'h3', job: moved };
    const waiting = plan(input({ jobs: [...jobs, moved], moves: [move] }));
    expect(waiting.stops).toEqual([]);
    expect(waiting.starts).toEqual([]);
    expect(waiting.moves).toEqual([move]);
    const done = plan(input({ jobs: [...jobs, { ...moved, state: 'up' }], moves: [move] }));
    expect(done.stops).toMatchObject([{ job: { id: 'h1-1', hostId: 'h1' }, reason: 'rebalance', move }]);
    expect(done.starts).toEqual([]);
    expect(done.moves).toEqual([]);
    const gone = plan(input({ jobs, moves: [move] }));
    expect(gone.moves).toEqual([]);
    expect(gone.stops).toEqual([]);
  });
});

describe('recovering owed crash restarts', () => {
  const backoff = { ...BACKOFF_DEFAULTS, immediateRestarts: 1, initialDelayMs: 1000, factor: 2, maxDelayMs: 8000, resetAfterMs: 60_000 };
  const f = formations(webFormation(1));

  it('owes a restart for the latest unanswered crash, due at its end plus the next delay', () => {
    const a = job('a', 'h1', 'crashed', 100, { restarts: 0, endedAt: 200 });
    const b = job('b', 'h1', 'crashed', 210, { restarts: 1, endedAt: 300 });
    const owed = recoverRestarts({ formations: f, live: [], ended: [a, b], backoff });
    // a was answered by b (restarts 1, created after a ended); b is owed restart 2, delayed 1 s
    expect(owed).toEqual([{ formationKey: 'shop/v1', type: 'web', attempt: 2, dueAt: 1300, previousJobId: 'b' }]);
  });

  it('owes nothing when the crash was restarted, for one-offs, or for removed formations', () => {
    const a = job('a', 'h1', 'crashed', 100, { endedAt: 200 });
    expect(recoverRestarts({ formations: f, live: [job('r', 'h2', 'up', 250, { restarts: 1 })], ended: [a], backoff })).toEqual([]);
    expect(recoverRestarts({ formations: f, live: [], ended: [{ ...a, oneOff: true }], backoff })).toEqual([]);
    expect(recoverRestarts({ formations: new Map(), live: [], ended: [a], backoff })).toEqual([]);
    expect(recoverRestarts({ formations: f, live: [], ended: [{ ...a, state: 'down' }], backoff })).toEqual([]);
  });

  it('starts the count afresh for a job that lived resetAfterMs', () => {
    const a = job('a', 'h1', 'crashed', 1, { restarts: 5, endedAt: 70_001 });
    expect(recoverRestarts({ formations: f, live: [], ended: [a], backoff })).toMatchObject([{ attempt: 1, dueAt: 70_001 }]);
  });
});
