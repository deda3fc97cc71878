import { afterEach, describe, expect, it } from 'vitest';
import { until } from '../../src/common/until.js';
import type { LeadershipState } from '../../src/scheduler/scheduler.js';
import { rig, type Rig } from './support.js';

describe('Scheduler.watchLeadership', () => {
  let r: Rig;
  afterEach(() => r.close());

  it('yields leading and the listed hosts as they change, and ends when the scheduler closes', async () => {
    r = rig();
    await r.cluster.addHost({ id: 'h1' });
    const s = await r.start('s1');
    const seen: LeadershipState[] = [];
    const watching = (async () => {
      for await (const state of s.watchLeadership()) seen.push(state);
    })();
    await until((signal) => s.watchLeadership({ signal }), (st) => st.leading && st.readyHosts === 1, { timeoutMs: 10_000 });
    await r.cluster.addHost({ id: 'h2' });
    await until((signal) => s.watchLeadership({ signal }), (st) => st.readyHosts === 2, { timeoutMs: 10_000 });
    await s.close();
    await watching;
    // A watcher that outlives the leadership sees it won and lost.
    expect(seen.some((st) => st.leading && st.readyHosts >= 1)).toBe(true);
    expect(seen.at(-1)).toEqual({ leading: false, readyHosts: 0 });
  });

  it("says 'leader' only once the scheduler can act on it", async () => {
    r = rig();
    await r.cluster.addHost({ id: 'h1' });
    const s = await r.start('s1');
    // On the event, the scheduler answers as leader: no NotLeaderError in between.
    for await (const e of s.events({ types: ['leader'] })) {
      expect(e).toMatchObject({ leading: true });
      expect(s.leading).toBe(true);
      await s.settle();
      break;
    }
  });
});
