import { afterEach, describe, expect, it } from 'vitest';
import type { FormationSource } from '../../src/scheduler/formation-source.js';
import { startScheduler } from '../../src/scheduler/scheduler.js';
import { FAST_TIMING, leading, record, rig, waitFor, webFormation, type Rig } from './support.js';

describe('a scheduler starting over running jobs', () => {
  let r: Rig;
  afterEach(() => r.close());

  it('keeps them when the hosts answer before the formations do', async () => {
    r = rig();
    for (const id of ['h1', 'h2']) await r.cluster.addHost({ id });
    const first = await r.start('s1');
    await leading(first);
    r.formations.put(webFormation(2));
    await waitFor('2 up', () => r.cluster.liveJobs('web').filter((j) => j.state === 'up').length === 2);
    const before = r.cluster.liveJobs('web').map((j) => j.id).sort();
    await first.close();

    // The formation store answers slowly (a controller store on a busy etcd): the hosts' job lists arrive first.
    const slow: FormationSource = {
      list: () => r.formations.list(),
      async *watch(options) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        yield* r.formations.watch(options);
      },
    };
    const second = await startScheduler({ id: 's2', discovery: r.cluster.mortal(), formations: slow, connectHost: r.cluster.connector, timing: FAST_TIMING });
    try {
      const events = record(second);
      await leading(second);
      await second.settle();
      expect(r.cluster.liveJobs('web').map((j) => j.id).sort()).toEqual(before);
      expect(events.filter((e) => e.type === 'stopped' || e.type === 'placed')).toEqual([]);
    } finally {
      await second.close();
    }
  });
});
