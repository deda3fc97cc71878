import { afterEach, describe, expect, it } from 'vitest';
import { HOST_ID_TAG, type Formation } from '../../src/scheduler/types.js';
import { leading, record, rig, waitFor, webFormation, type Rig } from './support.js';

const GiB = 1024 ** 3;
const spec = { image: 'flynn-ts/runtime:latest', cmd: ['start'] };

describe('scheduler placement on fake hosts', () => {
  let r: Rig;
  afterEach(() => r.close());

  it('blocks a type whose tags no host has, and places it when a matching host joins', async () => {
    r = rig();
    await r.cluster.addHost({ id: 'h1', tags: { disk: 'hdd' } });
    const s = await r.start('s1');
    await leading(s);
    const events = record(s);
    r.formations.put(webFormation(2, { tags: { web: { disk: 'ssd' } } }));
    await waitFor('blocked', () => events.find((e) => e.type === 'blocked'));
    expect(events.find((e) => e.type === 'blocked')).toMatchObject({ processType: 'web', count: 2, reason: 'tags' });
    expect(s.view().formations[0]?.processes[0]?.blocked).toBe(2);
    expect(r.cluster.liveJobs()).toHaveLength(0);
    await r.cluster.addHost({ id: 'h2', tags: { disk: 'ssd', zone: 'a' } });
    await waitFor('2 up on h2', () => r.cluster.upPerHost('web').h2 === 2);
    expect(r.cluster.upPerHost('web').h1).toBe(0);
    await s.settle();
    expect(s.view().formations[0]?.processes[0]?.blocked).toBe(0);
  });

  it('pins a type to one host with the host-id tag (a job whose volume lives there), and passes its volumes and alias on', async () => {
    r = rig();
    for (const id of ['h1', 'h2', 'h3']) await r.cluster.addHost({ id });
    const s = await r.start('s1');
    await leading(s);
    const volumes = [{ name: 'pg-data', target: '/data' }];
    r.formations.put({
      app: 'pg',
      release: 'v1',
      processes: { postgres: 2 },
      tags: { postgres: { [HOST_ID_TAG]: 'h2' } },
      spec: { postgres: { ...spec, volumes, alias: 'postgres.flynn' } },
    });
    await waitFor('2 up on h2', () => r.cluster.upPerHost('postgres').h2 === 2);
    expect(r.cluster.liveJobs('postgres').map((j) => j.hostId)).toEqual(['h2', 'h2']);
    const started = r.cluster.hosts.get('h2')?.started.at(-1);
    expect(started).toMatchObject({ volumes, alias: 'postgres.flynn' });
  });

  it('respects host memory: places what fits, blocks the rest, places it when capacity joins', async () => {
    r = rig();
    await r.cluster.addHost({ id: 'h1', memoryBytes: 2 * GiB });
    await r.cluster.addHost({ id: 'h2', memoryBytes: 1 * GiB });
    const s = await r.start('s1');
    await leading(s);
    const events = record(s);
    r.formations.put(webFormation(4, { memory: { web: GiB } }));
    await waitFor('3 up', () => r.cluster.liveJobs('web').filter((j) => j.state === 'up').length === 3);
    await waitFor('blocked 1', () => events.find((e) => e.type === 'blocked'));
    expect(events.find((e) => e.type === 'blocked')).toMatchObject({ count: 1, reason: 'capacity' });
    expect(r.cluster.upPerHost('web')).toEqual({ h1: 2, h2: 1 });
    expect(s.view().hosts.find((h) => h.id === 'h1')).toMatchObject({ memoryBytes: 2 * GiB, reservedBytes: 2 * GiB });
    await r.cluster.addHost({ id: 'h3', memoryBytes: 4 * GiB });
    await waitFor('4th on h3', () => r.cluster.upPerHost('web').h3 === 1);
  });

  it('runs an omni type N per host on every matching host, including a host that joins later', async () => {
    r = rig();
    await r.cluster.addHost({ id: 'h1' });
    await r.cluster.addHost({ id: 'h2' });
    await r.cluster.addHost({ id: 'h3', tags: { role: 'edge' } });
    const s = await r.start('s1');
    await leading(s);
    const f: Formation = {
      app: 'logs',
      release: 'v1',
      processes: { shipper: 2, edge: 1 },
      omni: ['shipper', 'edge'],
      tags: { edge: { role: 'edge' } },
      spec: { shipper: spec, edge: spec },
    };
    r.formations.put(f);
    await waitFor(
      '2 shippers per host and the edge job up',
      () => Object.values(r.cluster.upPerHost('shipper')).every((n) => n === 2) && r.cluster.liveJobs('shipper').length === 6 && r.cluster.upPerHost('edge').h3 === 1,
    );
    expect(r.cluster.upPerHost('edge')).toEqual({ h1: 0, h2: 0, h3: 1 });
    await r.cluster.addHost({ id: 'h4', tags: { role: 'edge' } });
    await waitFor('h4 has its omni jobs', () => r.cluster.upPerHost('shipper').h4 === 2 && r.cluster.upPerHost('edge').h4 === 1);
    r.formations.scale('logs', 'v1', { shipper: 1 });
    await waitFor('1 shipper per host', () => r.cluster.liveJobs('shipper').length === 4);
    expect(Object.values(r.cluster.upPerHost('shipper'))).toEqual([1, 1, 1, 1]);
  });

  it('blocks with no-hosts while the cluster is empty, then places on the first host', async () => {
    r = rig();
    const s = await r.start('s1');
    await leading(s);
    const events = record(s);
    r.formations.put(webFormation(3));
    await waitFor('blocked', () => events.find((e) => e.type === 'blocked'));
    expect(events.find((e) => e.type === 'blocked')).toMatchObject({ reason: 'no-hosts', count: 3 });
    await r.cluster.addHost({ id: 'h1' });
    await waitFor('3 up', () => r.cluster.upPerHost('web').h1 === 3);
  });
});
