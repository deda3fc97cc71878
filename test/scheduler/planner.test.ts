import { describe, expect, it } from 'vitest';
import { BACKOFF_DEFAULTS, nextRestartAttempt, restartDelay } from '../../src/scheduler/backoff.js';
import { hostInfoFromInstance, hostMeta } from '../../src/scheduler/host-client.js';
import { plan } from '../../src/scheduler/reconcile.js';
import { formationKey, type Formation, type ScheduledJob } from '../../src/scheduler/types.js';
import { validateFormation } from '../../src/scheduler/validate.js';
import { MemoryFormationSource } from '../../src/scheduler/memory-formation-source.js';
import { webFormation } from './support.js';

const hosts = ['h1', 'h2', 'h3'].map((id) => ({ id, addr: `${id}:1`, tags: {}, capacity: { memoryBytes: 0 } }));
const job = (id: string, hostId: string, state: ScheduledJob['state'], createdAt: number): ScheduledJob => ({
  id, hostId, app: 'shop', release: 'v1', type: 'web', state, oneOff: false, restarts: 0, memoryBytes: 0, createdAt,
});
const formations = (...fs: Formation[]) => new Map(fs.map((f) => [formationKey(f.app, f.release), validateFormation(f)]));

describe('planner', () => {
  it('spreads new jobs to the hosts with the fewest jobs of the type', () => {
    const p = plan({ formations: formations(webFormation(4)), hosts, placeable: true, jobs: [job('a', 'h1', 'up', 1)], restarts: [], now: 0 });
    expect(p.starts.map((s) => s.hostId).sort()).toEqual(['h1', 'h2', 'h3']);
  });

  it('stops surplus jobs that are not up yet first, then the newest', () => {
    const jobs = [job('old', 'h1', 'up', 1), job('new', 'h2', 'up', 5), job('pend', 'h3', 'pending', 2), job('mid', 'h1', 'up', 3)];
    const p = plan({ formations: formations(webFormation(2)), hosts, placeable: true, jobs, restarts: [], now: 0 });
    expect(p.stops.map((s) => s.job.id)).toEqual(['pend', 'new']);
    expect(p.starts).toHaveLength(0);
  });

  it('starts nothing while some host is still unread, but still stops', () => {
    const p = plan({ formations: formations(webFormation(3)), hosts, placeable: false, jobs: [], restarts: [], now: 0 });
    expect(p.starts).toHaveLength(0);
    expect(p.blocked).toHaveLength(0);
  });

  it('holds a restart until it is due and drops it when the type is scaled to fit', () => {
    const restart = { formationKey: 'shop/v1', type: 'web', attempt: 3, dueAt: 100, previousJobId: 'x' };
    const held = plan({ formations: formations(webFormation(1)), hosts, placeable: true, jobs: [], restarts: [restart], now: 50 });
    expect(held.starts).toHaveLength(0);
    expect(held.wakeAt).toBe(100);
    const due = plan({ formations: formations(webFormation(1)), hosts, placeable: true, jobs: [], restarts: [restart], now: 100 });
    expect(due.starts).toMatchObject([{ type: 'web', restart: { attempt: 3 } }]);
    const dropped = plan({ formations: formations(webFormation(1)), hosts, placeable: true, jobs: [job('a', 'h1', 'up', 1)], restarts: [restart], now: 0 });
    expect(dropped.restarts).toHaveLength(0);
  });

  it('stops the jobs of a formation that no longer exists', () => {
    const p = plan({ formations: new Map(), hosts, placeable: true, jobs: [job('a', 'h1', 'up', 1)], restarts: [], now: 0 });
    expect(p.stops).toMatchObject([{ job: { id: 'a' }, reason: 'removed' }]);
  });
});

describe('backoff', () => {
  it('is immediate for the first restarts, then doubles up to the cap', () => {
    const o = { ...BACKOFF_DEFAULTS, immediateRestarts: 3, initialDelayMs: 1000, factor: 2, maxDelayMs: 5000 };
    expect([1, 2, 3, 4, 5, 6, 7, 20].map((n) => restartDelay(n, o))).toEqual([0, 0, 0, 1000, 2000, 4000, 5000, 5000]);
  });

  it('resets the count after a job stayed up long enough', () => {
    expect(nextRestartAttempt(4, 10, BACKOFF_DEFAULTS)).toBe(5);
    expect(nextRestartAttempt(4, BACKOFF_DEFAULTS.resetAfterMs, BACKOFF_DEFAULTS)).toBe(1);
    expect(nextRestartAttempt(0, undefined, BACKOFF_DEFAULTS)).toBe(1);
  });
});

describe('input validation', () => {
  it('rejects malformed formations naming the field', () => {
    const bad: [unknown, string][] = [
      [{ ...webFormation(1), app: '' }, 'app'],
      [{ ...webFormation(1), processes: { web: -1 } }, 'processes.web'],
      [{ ...webFormation(1), processes: { web: 1.5 } }, 'processes.web'],
      [{ ...webFormation(1), spec: {} }, 'spec.web'],
      [{ ...webFormation(1), tags: { web: { disk: 1 } } }, 'tags.web'],
      [{ ...webFormation(1), memory: { web: 'lots' } }, 'memory.web'],
      [{ ...webFormation(1), spec: { web: { image: 'x', cmd: 'start' } } }, 'spec.web'],
      [{ ...webFormation(1), spec: { web: { image: 'x', cmd: [], ports: [{ port: 0 }] } } }, 'spec.web'],
      [{ ...webFormation(1), spec: { web: { image: 'x', cmd: [], artifact: { url: 'http://s/slug.tgz', sha256: 'AB'.repeat(32) } } } }, 'spec.web'],
      [null, 'formation'],
    ];
    for (const [input, field] of bad) {
      expect(() => validateFormation(input), field).toThrowError(expect.objectContaining({ code: 'FLYNN_ERR_SCHEDULER_INVALID_FORMATION', detail: { field } }));
    }
    // A slug's sha256 passes through to the host.
    const artifact = { url: 'http://s/slug.tgz', sha256: 'ab'.repeat(32) };
    expect(validateFormation({ ...webFormation(1), spec: { web: { image: 'x', cmd: [], artifact } } }).spec.web?.artifact).toEqual(artifact);
    const source = new MemoryFormationSource();
    expect(() => source.put({ ...webFormation(1), release: 'bad release' })).toThrowError(expect.objectContaining({ kind: 'invalid' }));
  });

  it('parses a host registration and rejects malformed meta', () => {
    const info = { id: 'h1', addr: '127.0.0.2:1113', tags: { disk: 'ssd' }, capacity: { memoryBytes: 1024 } };
    const instance = { id: 'i', service: 'flynn-host', addr: '127.0.0.2:1113', proto: 'http', index: 1, meta: hostMeta(info) };
    expect(hostInfoFromInstance(instance)).toEqual(info);
    for (const meta of <Record<string, string>[]>[{}, { id: 'h', tags: 'nope' }, { id: 'h', tags: '{"a":1}' }, { id: 'h', capacity: '{"memoryBytes":-1}' }]) {
      expect(() => hostInfoFromInstance({ ...instance, meta })).toThrowError(expect.objectContaining({ code: 'FLYNN_ERR_SCHEDULER_INVALID_HOST' }));
    }
  });
});
