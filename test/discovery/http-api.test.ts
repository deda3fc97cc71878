import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { UnavailableError } from '../../src/common/errors.js';
import { parseSse } from '../../src/common/http/sse.js';
import { errorFromStream } from '../../src/common/http/stream-error.js';
import { until } from '../../src/common/until.js';
import { createDiscovery } from '../../src/discovery/create.js';
import { DiscoveryInputError } from '../../src/discovery/errors.js';
import { HttpDiscovery } from '../../src/discovery/http-backend.js';
import { MemoryDiscovery } from '../../src/discovery/memory-backend.js';
import { startDiscoveryServer, type DiscoveryServer } from '../../src/discovery/server.js';
import { EventReader } from '../../src/discovery/testing/conformance.js';
import { startCutProxy } from './cut-proxy.js';

describe('discovery HTTP API', () => {
  let backend: MemoryDiscovery;
  let server: DiscoveryServer;
  beforeAll(async () => {
    backend = new MemoryDiscovery();
    server = await startDiscoveryServer({ discovery: backend, host: '127.0.0.2', port: 0 });
  });
  afterAll(async () => {
    await server.close();
    await backend.close();
  });

  const send = async (method: 'GET' | 'PUT' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: string) => {
    const res = await request(server.url + path, { method, body, headers: body === undefined ? {} : { 'content-type': 'application/json' } });
    const text = await res.body.text();
    return { status: res.statusCode, json: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
  };

  it('registers, heartbeats, updates, lists, names the leader and deletes over plain HTTP', async () => {
    const put = await send('PUT', '/services/plain/instances', JSON.stringify({ addr: '127.0.0.1:9000', meta: { a: '1' }, ttlMs: 5000 }));
    expect(put.status).toBe(201);
    expect(put.json).toMatchObject({ instance: { service: 'plain', addr: '127.0.0.1:9000', meta: { a: '1' } }, ttlMs: 5000, heartbeatIntervalMs: 1666 });
    const id = (put.json?.instance as { id: string }).id;
    expect((await send('POST', `/services/plain/instances/${id}/heartbeat`)).status).toBe(204);
    expect(await send('PATCH', `/services/plain/instances/${id}`, JSON.stringify({ meta: { a: '2' } }))).toMatchObject({ status: 200, json: { instance: { meta: { a: '2' } } } });
    expect(await send('GET', '/services/plain/instances')).toMatchObject({ status: 200, json: { instances: [{ id, meta: { a: '2' } }] } });
    expect(await send('GET', '/services/plain/leader')).toMatchObject({ status: 200, json: { leader: { id } } });
    expect((await send('DELETE', `/services/plain/instances/${id}`)).status).toBe(204);
    expect(await send('GET', '/services/plain/leader')).toMatchObject({ status: 200, json: { leader: null } });
  });

  it('answers bad input with 4xx JSON errors that name the field', async () => {
    const cases: [Parameters<typeof send>, number, string, string?][] = [
      [['PUT', '/services/Bad_Name/instances', '{"addr":"127.0.0.1:1"}'], 400, 'FLYNN_ERR_DISCOVERY_INVALID_SERVICE', 'service'],
      [['PUT', '/services/ok/instances', '{}'], 400, 'FLYNN_ERR_DISCOVERY_INVALID_ADDR', 'addr'],
      [['PUT', '/services/ok/instances', '{"addr":"127.0.0.1:1","ttlMs":"10"}'], 400, 'FLYNN_ERR_DISCOVERY_INVALID_TTL', 'ttlMs'],
      [['PUT', '/services/ok/instances', '{"addr":"127.0.0.1:1","meta":[1]}'], 400, 'FLYNN_ERR_DISCOVERY_INVALID_META', 'meta'],
      [['PUT', '/services/ok/instances', '[1,2]'], 400, 'FLYNN_ERR_DISCOVERY_INVALID_REQUEST', 'body'],
      [['PUT', '/services/ok/instances', '{not json'], 400, 'FLYNN_ERR_MALFORMED_JSON'],
      [['POST', '/services/ok/instances/nope/heartbeat'], 404, 'FLYNN_ERR_DISCOVERY_INSTANCE_NOT_FOUND'],
      [['PATCH', '/services/ok/instances/nope', '{"meta":{}}'], 404, 'FLYNN_ERR_DISCOVERY_INSTANCE_NOT_FOUND'],
      [['DELETE', '/services/ok/instances/nope'], 404, 'FLYNN_ERR_DISCOVERY_INSTANCE_NOT_FOUND'],
      [['GET', '/services/UPPER/instances'], 400, 'FLYNN_ERR_DISCOVERY_INVALID_SERVICE', 'service'],
      [['GET', '/services/UPPER/events'], 400, 'FLYNN_ERR_DISCOVERY_INVALID_SERVICE', 'service'],
      [['GET', '/nothing-here'], 404, 'FLYNN_ERR_HTTP_NOT_FOUND'],
    ];
    for (const [args, status, code, field] of cases) {
      const res = await send(...args);
      expect(res.status, `${args[0]} ${args[1]}`).toBe(status);
      expect(res.json).toMatchObject({ code, retryable: false, ...(field ? { detail: { field } } : {}) });
    }
    const put = await send('PUT', '/services/ok/instances', '{"addr":"127.0.0.1:1"}');
    const id = (put.json?.instance as { id: string }).id;
    expect(await send('PATCH', `/services/ok/instances/${id}`, '{}')).toMatchObject({ status: 400, json: { detail: { field: 'meta' } } });
    expect(await send('PATCH', `/services/other/instances/${id}`, '{"meta":{}}')).toMatchObject({ status: 404 });
    await send('DELETE', `/services/ok/instances/${id}`);
  });

  const openStream = async (service: string, lastEventId?: string) => {
    const controller = new AbortController();
    const res = await request(`${server.url}/services/${service}/events`, { signal: controller.signal, headers: lastEventId ? { 'last-event-id': lastEventId } : {} });
    expect(res.headers['content-type']).toMatch(/text\/event-stream/);
    const events = parseSse(res.body);
    return {
      next: async () => (await events.next()).value as { id?: string; event?: string; data: string },
      close: () => controller.abort(),
    };
  };

  it('streams events as SSE with an id on every event', async () => {
    const stream = await openStream('sse');
    const current = await stream.next();
    expect(current).toMatchObject({ event: 'current', id: expect.stringMatching(/^[0-9a-f]+-0$/) });
    const epoch = current.id?.split('-')[0];
    const reg = await backend.register({ service: 'sse', addr: '127.0.0.1:9100' });
    const up = await stream.next();
    expect(up).toMatchObject({ event: 'up', id: `${epoch}-1` });
    expect(JSON.parse(up.data)).toMatchObject({ type: 'up', instance: { id: reg.instance.id } });
    expect(await stream.next()).toMatchObject({ event: 'leader', id: `${epoch}-2` });
    stream.close();
    await reg.unregister();
  });

  it('replays what a client missed when it reconnects with Last-Event-Id, and sends current for an unknown id', async () => {
    const first = await openStream('resume');
    const current = await first.next();
    first.close();
    const reg = await backend.register({ service: 'resume', addr: '127.0.0.1:9150' });
    await reg.setMeta({ v: '2' });

    const resumed = await openStream('resume', current.id);
    expect([await resumed.next(), await resumed.next(), await resumed.next()].map((e) => e.event)).toEqual(['up', 'leader', 'update']);
    resumed.close();

    const stale = await openStream('resume', 'ffffffff-3');
    const fresh = await stale.next();
    expect(fresh.event).toBe('current');
    expect(JSON.parse(fresh.data)).toMatchObject({ instances: [{ id: reg.instance.id, meta: { v: '2' } }], leader: { id: reg.instance.id } });
    stale.close();
    await reg.unregister();
  });

  it('rebuilds typed errors in the http client backend', async () => {
    const client = new HttpDiscovery({ url: server.url });
    try {
      const reg = await client.register({ service: 'typed', addr: '127.0.0.1:9200' });
      await reg.unregister();
      await expect(reg.setMeta({})).rejects.toMatchObject({ code: 'FLYNN_ERR_DISCOVERY_INSTANCE_NOT_FOUND' });
    } finally {
      await client.close();
    }
    expect(() => new HttpDiscovery({ url: 'not a url' })).toThrow(DiscoveryInputError);
  });
});

describe('discovery HTTP API, a backend watch that fails', () => {
  it('ends the event stream with the error contract, which the client rebuilds into the same kind', async () => {
    const backend = new MemoryDiscovery();
    let breakWatch!: () => void;
    const broken = new Promise<never>((_, reject) => (breakWatch = () => reject(new Error('etcd went away'))));
    // The backend's watch of `failing` gives its current state, then fails.
    const failing = Object.create(backend, {
      watch: {
        value: (service: string) => {
          const real = backend.watch(service);
          return {
            close: () => real.close(),
            async *[Symbol.asyncIterator]() {
              for await (const event of real) {
                yield event;
                await broken;
              }
            },
          };
        },
      },
    }) as MemoryDiscovery;
    const server = await startDiscoveryServer({ discovery: failing, host: '127.0.0.2', port: 0 });
    try {
      const res = await request(`${server.url}/services/failing/events`);
      const events = parseSse(res.body);
      expect((await events.next()).value).toMatchObject({ event: 'current' });
      breakWatch();
      const error = (await events.next()).value as { event?: string; data: string };
      expect(error.event).toBe('error');
      expect(JSON.parse(error.data)).toEqual({ code: 'FLYNN_ERR_DISCOVERY_UNAVAILABLE', message: 'etcd went away', retryable: true, status: 503 });
      const rebuilt = errorFromStream(error.data);
      expect(rebuilt).toBeInstanceOf(UnavailableError);
      expect(rebuilt).toMatchObject({ code: 'FLYNN_ERR_DISCOVERY_UNAVAILABLE', message: 'etcd went away', retryable: true });
    } finally {
      await server.close();
      await backend.close();
    }
  });
});

describe('discovery HTTP API with a key', () => {
  it('answers every endpoint without the key, or with a wrong one, 401 and registers nothing; the client with the key works', async () => {
    const backend = new MemoryDiscovery();
    const server = await startDiscoveryServer({ discovery: backend, host: '127.0.0.2', port: 0, key: 'disco-key' });
    const client = createDiscovery({ backend: 'http', url: server.url, key: 'disco-key' });
    try {
      const reg = await client.register({ service: 'flynn-host', addr: '127.0.0.2:1113', meta: { id: 'real' } });
      const id = reg.instance.id;
      const endpoints: [method: 'GET' | 'PUT' | 'POST' | 'PATCH' | 'DELETE', path: string, body?: string][] = [
        ['PUT', '/services/flynn-host/instances', JSON.stringify({ addr: '127.0.0.9:1113', meta: { id: 'fake' } })],
        ['POST', `/services/flynn-host/instances/${id}/heartbeat`],
        ['PATCH', `/services/flynn-host/instances/${id}`, JSON.stringify({ meta: { id: 'fake' } })],
        ['DELETE', `/services/flynn-host/instances/${id}`],
        ['GET', '/services/flynn-host/instances'],
        ['GET', '/services/flynn-host/leader'],
        ['GET', '/services/flynn-host/events'],
      ];
      for (const authorization of [undefined, 'Bearer wrong']) {
        for (const [method, path, body] of endpoints) {
          const headers: Record<string, string> = body === undefined ? {} : { 'content-type': 'application/json' };
          if (authorization) headers.authorization = authorization;
          const res = await request(server.url + path, { method, body, headers });
          const text = await res.body.text();
          expect(res.statusCode, `${method} ${path}`).toBe(401);
          expect(JSON.parse(text)).toMatchObject({ code: 'FLYNN_ERR_DISCOVERY_UNAUTHORIZED' });
          expect(text).not.toContain('127.0.0.2:1113');
        }
      }
      expect((await client.instances('flynn-host')).map((i) => i.meta.id)).toEqual(['real']);
      const stranger = createDiscovery({ backend: 'http', url: server.url });
      await expect(stranger.instances('flynn-host')).rejects.toMatchObject({ code: 'FLYNN_ERR_DISCOVERY_UNAUTHORIZED' });
      await stranger.close();
      await reg.unregister();
      await expect(startDiscoveryServer({ discovery: backend, host: '127.0.0.2', port: 0, key: '' })).rejects.toMatchObject({ code: 'FLYNN_ERR_DISCOVERY_INVALID_CONFIG' });
    } finally {
      await client.close();
      await server.close();
      await backend.close();
    }
  });
});

describe('createDiscovery', () => {
  it('rejects an unknown backend with a typed error naming the field', () => {
    expect(() => createDiscovery({ backend: 'zookeeper' } as never)).toThrow(expect.objectContaining({ code: 'FLYNN_ERR_DISCOVERY_INVALID_CONFIG', detail: { field: 'backend' } }));
    expect(() => createDiscovery({ backend: 'etcd', endpoints: [] })).toThrow(expect.objectContaining({ detail: { field: 'endpoints' } }));
  });
});

describe('http discovery across a dropped connection', () => {
  it('resumes its watch with Last-Event-Id and hears even short-lived changes it missed', async () => {
    const backend = new MemoryDiscovery();
    const server = await startDiscoveryServer({ discovery: backend, host: '127.0.0.3', port: 0 });
    const proxy = await startCutProxy(server.url);
    const client = new HttpDiscovery({ url: proxy.endpoint, retryDelayMs: 50 });
    try {
      const events = new EventReader(client.watch('cut'));
      expect(await events.next()).toMatchObject({ type: 'current', instances: [] });
      proxy.cut(); // the changes below happen while the client is cut off (the server may not know yet)
      const brief = await backend.register({ service: 'cut', addr: '127.0.0.1:9400' });
      await brief.unregister();
      const stays = await backend.register({ service: 'cut', addr: '127.0.0.1:9401' });
      proxy.restore();
      const seen = [];
      for (let i = 0; i < 6; i++) seen.push(await events.next());
      expect(seen.map((e) => e.type)).toEqual(['up', 'leader', 'down', 'leader', 'up', 'leader']);
      expect(seen[4]).toMatchObject({ instance: { id: stays.instance.id } });
    } finally {
      await client.close();
      await proxy.close();
      await server.close();
      await backend.close();
    }
  });
});

describe('http discovery across a server restart', () => {
  it('reconnects its watch and reports what changed while it was away', async () => {
    const backend = new MemoryDiscovery();
    let server = await startDiscoveryServer({ discovery: backend, host: '127.0.0.3', port: 0 });
    const port = Number(server.addr.split(':')[1]);
    const client = new HttpDiscovery({ url: server.url, retryDelayMs: 50 });
    try {
      const before = await backend.register({ service: 'blip', addr: '127.0.0.1:9300' });
      const events = new EventReader(client.watch('blip'));
      expect(await events.next()).toMatchObject({ type: 'current', leader: { id: before.instance.id } });
      await server.close();
      await before.unregister();
      const after = await backend.register({ service: 'blip', addr: '127.0.0.1:9301' });
      server = await startDiscoveryServer({ discovery: backend, host: '127.0.0.3', port });
      const seen = [await events.next(), await events.next(), await events.next()];
      expect(seen.map((e) => e.type)).toEqual(['down', 'up', 'leader']);
      expect(seen[1]).toMatchObject({ instance: { id: after.instance.id } });
      expect(seen[2]).toMatchObject({ leader: { id: after.instance.id } });
    } finally {
      await client.close();
      await server.close();
      await backend.close();
    }
  });
});

describe('http discovery when the server forgets an instance', () => {
  it('registers again, with its current meta, on a discovery server restarted with an empty backend', async () => {
    const first = new MemoryDiscovery();
    let server = await startDiscoveryServer({ discovery: first, host: '127.0.0.2', port: 0 });
    const port = Number(new URL(server.url).port);
    const client = new HttpDiscovery({ url: server.url, retryDelayMs: 50 });
    let second: MemoryDiscovery | undefined;
    try {
      const reg = await client.register({ service: 'forgotten', addr: '127.0.0.1:7000', ttlMs: 1000 });
      await reg.setMeta({ v: '2' });
      const firstId = reg.instance.id;
      await server.close();
      await first.close();
      second = new MemoryDiscovery();
      const registeredAgain = until(second.watch('forgotten'), (e) => e.type === 'up', { timeoutMs: 10_000, what: 'the client registering again' });
      server = await startDiscoveryServer({ discovery: second, host: '127.0.0.2', port });
      const up = await registeredAgain; // its next heartbeat finds the instance gone
      const instances = await second.instances('forgotten');
      expect(instances).toEqual([expect.objectContaining({ addr: '127.0.0.1:7000', meta: { v: '2' } })]);
      expect(up.type === 'up' && up.instance.id).toBe(instances[0]?.id);
      await vi.waitFor(() => expect(reg.instance.id).toBe(instances[0]?.id), { timeout: 5_000 }); // once the server's answer is in
      expect(reg.instance.id).not.toBe(firstId);
      await reg.unregister();
      expect(await second.instances('forgotten')).toEqual([]);
    } finally {
      await client.close();
      await server.close();
      await second?.close();
    }
  });
});
