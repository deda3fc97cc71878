import { describe, expect, it } from 'vitest';
import { NotFoundError } from '../../src/common/errors.js';
import { JOB_LABELS } from '../../src/scheduler/host-client.js';
import { hostAgentConnector, type AgentJob, type AgentJobRequest, type HostAgentApi } from '../../src/scheduler/host-agent-connector.js';

const info = { id: 'h1', addr: '127.0.0.2:1113', tags: { disk: 'ssd' }, capacity: { memoryBytes: 1024 } };
const instance = { id: 'i', service: 'flynn-host', addr: info.addr, proto: 'http', index: 1, meta: {} };

function recordingApi() {
  const calls: { url?: string; created: AgentJobRequest[]; stopped: string[] } = { created: [], stopped: [] };
  const job: AgentJob = { id: 'j1', state: 'up', meta: { [JOB_LABELS.app]: 'shop' }, limits: { memoryBytes: 512 } };
  const api: HostAgentApi = {
    listJobs: async () => [job],
    createJob: async (spec) => {
      calls.created.push(spec);
      return { id: spec.id, state: 'pending', meta: spec.meta, limits: spec.limits };
    },
    stopJob: async (id) => {
      calls.stopped.push(id);
      if (id === 'gone') throw new NotFoundError('FLYNN_ERR_HOST_JOB_NOT_FOUND', 'no job gone');
      if (id === 'down') throw new Error('agent unreachable');
    },
    events: async function* () {
      yield { job: { ...job, state: 'crashed' as const, updatedAt: '2026-01-02T03:04:05.678Z' } };
      yield { job: { ...job, updatedAt: '2026-01-02T03:04:05.678Z' } };
    },
    close: async () => {},
  };
  return { api, calls };
}

describe('hostAgentConnector', () => {
  it('maps scheduler requests to the host agent job spec and agent jobs back', async () => {
    const { api, calls } = recordingApi();
    const host = await hostAgentConnector((url) => {
      calls.url = url;
      return api;
    })(info, instance);
    expect(calls.url).toBe('http://127.0.0.2:1113');
    expect(host).toMatchObject({ id: 'h1', tags: { disk: 'ssd' }, capacity: { memoryBytes: 1024 } });
    expect(await host.listJobs()).toEqual([{ id: 'j1', state: 'up', labels: { [JOB_LABELS.app]: 'shop' }, memoryBytes: 512 }]);
    const labels = { [JOB_LABELS.app]: 'shop', [JOB_LABELS.release]: 'v1', [JOB_LABELS.type]: 'run', [JOB_LABELS.oneOff]: 'true' };
    const started = await host.startJob({ id: 'x1', image: 'img', cmd: ['rake'], env: { A: '1' }, ports: [{ port: 8080, service: 'shop-web' }], labels, memoryBytes: 256 });
    expect(started).toEqual({ id: 'x1', state: 'pending', labels, memoryBytes: 256 });
    expect(calls.created[0]).toEqual({
      id: 'x1', app: 'shop', release: 'v1', type: 'run', oneOff: true, image: 'img', cmd: ['rake'], env: { A: '1' },
      ports: [{ port: 8080, proto: 'tcp', service: 'shop-web' }], limits: { memoryBytes: 256 }, meta: labels,
    });
    const events = [];
    for await (const e of host.events()) events.push(e);
    // an ended job carries its end time (the agent's updatedAt), which a new leader's backoff needs; a live one does not
    expect(events).toEqual([
      { job: { id: 'j1', state: 'crashed', labels: { [JOB_LABELS.app]: 'shop' }, memoryBytes: 512, endedAt: Date.parse('2026-01-02T03:04:05.678Z') } },
      { job: { id: 'j1', state: 'up', labels: { [JOB_LABELS.app]: 'shop' }, memoryBytes: 512 } },
    ]);
  });

  it('hands the host the artifact URL made for this start (a signed one), not the recorded one', async () => {
    const { api, calls } = recordingApi();
    let starts = 0;
    const host = await hostAgentConnector(() => api, { artifactUrl: (url) => `${url}?start=${++starts}` })(info, instance);
    const labels = { [JOB_LABELS.app]: 'shop', [JOB_LABELS.release]: 'v1', [JOB_LABELS.type]: 'web' };
    const artifact = { url: 'http://127.0.0.1:8082/slugs/shop/1.tgz' };
    await host.startJob({ id: 'w1', image: 'img', cmd: ['start'], env: {}, labels, artifact });
    await host.startJob({ id: 'w2', image: 'img', cmd: ['start'], env: {}, labels, artifact });
    expect(calls.created.map((c) => c.artifact?.url)).toEqual([`${artifact.url}?start=1`, `${artifact.url}?start=2`]);
    expect(artifact.url).toBe('http://127.0.0.1:8082/slugs/shop/1.tgz');
  });

  it('takes stopping an unknown job as done, but passes other failures on', async () => {
    const { api } = recordingApi();
    const host = await hostAgentConnector(() => api)(info, instance);
    await expect(host.stopJob('gone')).resolves.toBeUndefined();
    await expect(host.stopJob('down')).rejects.toThrow('agent unreachable');
  });
});
