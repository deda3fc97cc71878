import { describe, expect, it } from 'vitest';
import type { FormationEvent } from '../../src/scheduler/formation-source.js';
import { MemoryFormationSource } from '../../src/scheduler/memory-formation-source.js';
import { startScheduler } from '../../src/scheduler/scheduler.js';
import { FakeCluster } from '../../src/scheduler/testing/fake-hosts.js';
import { webFormation } from './support.js';

describe('MemoryFormationSource', () => {
  it('watch gives current first, then puts and deletes, and ends when the signal aborts', async () => {
    const source = new MemoryFormationSource([webFormation(1)]);
    const ac = new AbortController();
    const seen: FormationEvent[] = [];
    const done = (async () => {
      for await (const e of source.watch({ signal: ac.signal })) {
        seen.push(e);
        if (e.type === 'put' && e.formation.app === 'marker') ac.abort();
      }
    })();
    source.scale('shop', 'v1', { web: 3, worker: 0 });
    source.delete('shop', 'v1');
    source.delete('shop', 'v1'); // nothing to delete: no event
    // A last change to wait for: an event of the no-op delete would come before it.
    source.put({ ...webFormation(1), app: 'marker' });
    await done;
    expect(seen.map((e) => e.type)).toEqual(['current', 'put', 'delete', 'put']);
    expect(seen[1]).toMatchObject({ formation: { processes: { web: 3, worker: 0 } } });
    expect((await source.list()).map((f) => f.app)).toEqual(['marker']);
  });

  it('stores frozen copies, so a caller cannot change desired state behind its back', async () => {
    const input = webFormation(2);
    const source = new MemoryFormationSource();
    source.put(input);
    input.processes.web = 99;
    const [stored] = await source.list();
    expect(stored?.processes.web).toBe(2);
    expect(Object.isFrozen(stored?.processes)).toBe(true);
  });
});

describe('startScheduler options', () => {
  it('rejects bad timing and missing seams with typed errors', async () => {
    const cluster = new FakeCluster();
    const base = { discovery: cluster.mortal(), formations: new MemoryFormationSource(), connectHost: cluster.connector };
    await expect(startScheduler({ ...base, timing: { leaderTtlMs: 10 } })).rejects.toMatchObject({ code: 'FLYNN_ERR_SCHEDULER_INVALID_OPTIONS', detail: { field: 'timing.leaderTtlMs' } });
    await expect(startScheduler({ ...base, timing: { backoff: { factor: 0.5 } } })).rejects.toMatchObject({ detail: { field: 'timing.backoff.factor' } });
    await expect(startScheduler({ ...base, formations: undefined as never })).rejects.toMatchObject({ detail: { field: 'formations' } });
    const s = await startScheduler(base);
    await s.close();
    await s.close(); // idempotent
    expect(() => s.view()).toThrowError(expect.objectContaining({ code: 'FLYNN_ERR_CLOSED' }));
    await cluster.close();
  });
});
