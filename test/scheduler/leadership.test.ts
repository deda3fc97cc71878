/** Leader election and takeover on the in-memory registry, fake hosts answering slowly (40 ms). */
import { FakeCluster } from '../../src/scheduler/testing/fake-hosts.js';
import { describeLeadership } from './leadership-suite.js';

describeLeadership('memory', async () => {
  const cluster = new FakeCluster({ latencyMs: 40 });
  return {
    cluster,
    async handle() {
      const d = cluster.mortal();
      return { discovery: d, die: () => d.die() };
    },
    close: () => cluster.close(),
  };
});
