import { randomUUID } from 'node:crypto';
import { afterAll, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../../src/bootstrap/index.js';
import { removeTestContainers, TEST_LABELS } from '../host/support.js';
import { needDocker } from '../support/services.js';
import { until } from './deploy-scenario.js';

const run = randomUUID().slice(0, 6);
afterAll(() => removeTestContainers(run));

const start = (addr: string) => startCluster({ runtime: 'docker', hostAddrs: [addr], labels: TEST_LABELS(run), ports: { controller: 0, router: 0, git: 0, shelf: 0 } });

if (await needDocker('two clusters on one Docker engine')) {
  it("two one-process clusters on one Docker engine leave each other's jobs alone", async () => {
    const clusters: Cluster[] = [];
    try {
      const a = await start('127.0.0.5');
      clusters.push(a);
      const agentA = a.hosts[0]!.agent;
      const job = await agentA.createJob({ id: `job-${run}`, app: `two${run}`, release: 'r1', type: 'worker', cmd: ['sleep', '120'] });
      await until('the job to run', async () => (agentA.listJobs().find((j) => j.id === job.id)?.state === 'up' ? true : undefined));

      // A second cluster (e.g. `npm run demo` next to `npm start`): its own host ids, so its agent
      // does not adopt the first cluster's container and its scheduler does not stop it.
      const b = await start('127.0.0.6');
      clusters.push(b);
      // Two full reconcile passes of b: a job of a it took for its own would be stopped or adopted by then.
      await b.scheduler.settle();
      await b.scheduler.settle();
      expect(b.hosts[0]!.agent.listJobs()).toEqual([]);
      expect(agentA.listJobs().find((j) => j.id === job.id)?.state).toBe('up');
    } finally {
      for (const c of clusters.reverse()) await c.close();
    }
  }, 90_000);
}
