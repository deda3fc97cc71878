import { randomUUID } from 'node:crypto';
import { afterAll, expect, it, vi } from 'vitest';
import { MemoryDiscovery } from '../../src/discovery/memory-backend.js';
import { startHostAgent } from '../../src/host/start.js';
import { DockerRuntime } from '../../src/host/docker-runtime.js';
import { needDocker } from '../support/services.js';
import { removeTestContainers, TEST_LABELS, HOST_KEY } from './support.js';

const run = randomUUID().slice(0, 6);
afterAll(() => removeTestContainers(run));

if (await needDocker('docker runtime exit waits')) {
  it('follows the exits of many running containers without piling abort listeners (no MaxListenersExceededWarning)', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => {
      if (w.name === 'MaxListenersExceededWarning') warnings.push(w);
    };
    process.on('warning', onWarning);
    const discovery = new MemoryDiscovery();
    const runtime = new DockerRuntime({ labels: TEST_LABELS(run) });
    const host = await startHostAgent({ key: HOST_KEY, id: `waits-${run}`, advertiseAddr: '127.0.0.7', discovery, runtime, stopGraceMs: 500 });
    try {
      // 7 containers: two listeners each on the runtime's one signal would be past the limit of 10.
      const jobs = await Promise.all(Array.from({ length: 7 }, (_, i) => host.agent.createJob({ id: `wait-${run}-${i}`, app: `waits${run}`, release: 'r1', type: 'worker', cmd: ['sleep', '60'] })));
      // Up once its container started, and the runtime waits on a container from its start on.
      await vi.waitFor(() => expect(host.agent.listJobs().filter((j) => j.state === 'up')).toHaveLength(jobs.length), { timeout: 30_000, interval: 50 });
      await new Promise((resolve) => process.nextTick(resolve)); // a warning is emitted on the next tick
      expect(warnings).toEqual([]);
      await Promise.all(jobs.map((j) => host.agent.stopJob(j.id, { graceMs: 200 })));
    } finally {
      process.off('warning', onWarning);
      await host.close();
      await runtime.close();
      await discovery.close();
    }
  }, 60_000);
}
