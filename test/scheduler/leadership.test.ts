/** Leader election and takeover on the in-memory registry on a ManualClock, fake hosts answering slowly (40 ms). */
import { ManualClock } from '../../src/common/clock.js';
import { FakeCluster } from '../../src/scheduler/testing/fake-hosts.js';
import { describeLeadership } from './leadership-suite.js';

describeLeadership('memory', async () => {
  // TTLs, heartbeats and the schedulers' timers on one clock the suite moves.
  const clock = new ManualClock(Date.now());
  const cluster = new FakeCluster({ latencyMs: 40, clock });
  return {
    cluster,
    clock,
    async handle() {
      const d = cluster.mortal();
      return { discovery: d, die: () => d.die() };
    },
    close: () => cluster.close(),
  };
});
