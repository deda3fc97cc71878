/**
 * A bounded fuzz of every controller endpoint: malformed JSON, wrong types, huge and unicode
 * values, traversal ids, prototype keys. A seeded PRNG and a fixed count keep it a CI test that
 * runs in seconds and fails the same way every time: no 5xx, no crash, the API answers after.
 */
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { startHarness } from './harness.js';
import { KEY } from './harness.js';

const SEED = 0x5eed14;
const REQUESTS = 1500;

/** mulberry32: a small seeded PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Method = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
const ENDPOINTS: Array<[Method, string]> = [
  ['GET', '/status'],
  ['POST', '/apps'], ['GET', '/apps'], ['GET', '/apps/:app'], ['PATCH', '/apps/:app'], ['DELETE', '/apps/:app'],
  ['POST', '/artifacts'], ['GET', '/artifacts'], ['GET', '/artifacts/:id'],
  ['POST', '/apps/:app/releases'], ['GET', '/apps/:app/releases'], ['GET', '/apps/:app/releases/:release'], ['GET', '/apps/:app/release'],
  ['POST', '/apps/:app/deploy'], ['GET', '/apps/:app/deployments'], ['GET', '/apps/:app/deployments/:id'],
  ['POST', '/apps/:app/rollback'],
  ['GET', '/apps/:app/env'], ['PATCH', '/apps/:app/env'],
  ['GET', '/formations'], ['GET', '/apps/:app/formations'], ['GET', '/apps/:app/formations/:release'], ['PUT', '/apps/:app/formations/:release'], ['PUT', '/apps/:app/scale'],
  ['GET', '/apps/:app/jobs'], ['DELETE', '/apps/:app/jobs/:id'], ['POST', '/apps/:app/jobs'],
  ['GET', '/apps/:app/log'],
  ['GET', '/routes'], ['GET', '/apps/:app/routes'], ['POST', '/apps/:app/routes'], ['GET', '/apps/:app/routes/:type/:id'], ['PATCH', '/apps/:app/routes/:type/:id'], ['DELETE', '/apps/:app/routes/:type/:id'],
  ['GET', '/keys'], ['POST', '/keys'], ['DELETE', '/keys/:id'],
  ['GET', '/events'],
];

const FIELDS = ['name', 'meta', 'strategy', 'url', 'processes', 'artifactId', 'env', 'release', 'set', 'unset', 'cmd', 'attach', 'type', 'domain', 'path', 'service', 'port', 'sticky', 'tls', 'timeouts', 'healthCheck', 'redirectHttps', 'key', 'web', '__proto__', 'constructor', 'prototype'];

describe('controller API fuzz (seeded, bounded)', () => {
  it(`answers ${REQUESTS} malformed requests without a 5xx or a crash, and keeps answering`, async () => {
    await using h = await startHarness();
    const app = await h.client.createApp({ name: 'fz' });
    const artifact = await h.client.createArtifact({ url: 'http://127.0.0.1:9/slug.tgz', processes: { web: { cmd: ['node', 'web.js'] } } });
    const release = await h.client.createRelease('fz', { artifactId: artifact.id, env: { A: '1' } });
    await h.client.waitForDeployment('fz', (await h.client.deploy('fz', release.id)).id);

    const rnd = prng(SEED);
    const int = (n: number) => Math.floor(rnd() * n);
    const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T;
    const str = (): string =>
      pick([
        () => '',
        () => 'x'.repeat(int(40)),
        () => 'x'.repeat(100_000),
        () => '../../../../etc/passwd',
        () => '..%2f..%2fetc%2fpasswd',
        () => '%00',
        () => 'é漢字🙂\u202e\u0000',
        () => '\ud800',
        () => 'web',
        () => 'fz',
        () => app.id,
        () => release.id,
        () => 'A'.repeat(int(10) + 1) + '=' + 'b',
        () => 'ssh-ed25519 AAAA' + 'Z'.repeat(int(50)),
        () => 'http://127.0.0.1:9/x',
        () => String(int(1e9)),
      ])();
    const value = (depth: number): unknown => {
      const kinds: Array<() => unknown> = [() => str(), () => int(1e6) - 5e5, () => rnd() * 1e308, () => true, () => null, () => -1, () => 1e21, () => 2 ** 53 + 1];
      if (depth < 3) kinds.push(() => Array.from({ length: int(4) }, () => value(depth + 1)), () => object(depth + 1));
      return pick(kinds)();
    };
    const object = (depth: number): Record<string, unknown> => {
      const o: Record<string, unknown> = {};
      for (let i = int(5); i > 0; i--) o[pick(FIELDS)] = value(depth);
      if (rnd() < 0.2) o[str()] = value(depth);
      return o;
    };
    const enc = (text: string) => encodeURIComponent(text.replace(/[\ud800-\udfff]/g, '\ufffd'));
    const segment = (name: string): string => {
      const valid: Record<string, string[]> = { app: ['fz', app.id], release: [release.id], id: [artifact.id, 'web'], type: ['http', 'tcp'] };
      return rnd() < 0.3 && valid[name] ? pick(valid[name] ?? []) : enc(str()).slice(0, rnd() < 0.9 ? 200 : 10_000) || '%20';
    };
    const body = (): string | undefined =>
      pick([
        () => undefined,
        () => '{',
        () => '{"name":',
        () => 'null',
        () => '[]',
        () => '"x"',
        () => '1e999',
        () => '{"__proto__":{"polluted":1}}',
        () => JSON.stringify(value(0)),
        () => JSON.stringify(object(0)),
        () => JSON.stringify(object(0)),
        () => JSON.stringify(object(0)),
      ])();

    const statuses = new Map<number, number>();
    const fivexx: string[] = [];
    for (let i = 0; i < REQUESTS; i++) {
      const [method, template] = pick(ENDPOINTS);
      // The fixture app stays: deleting it would leave the rest of the run on 404s.
      const path = template.replace(/:(\w+)/g, (_m, name: string) => (method === 'DELETE' && template === '/apps/:app' ? 'gone-' + int(1e6) : segment(name)));
      const query = rnd() < 0.2 ? `?${pick(['follow', 'lines', 'job', 'type', 'app', 'last_event_id'])}=${enc(str()).slice(0, 300)}` : '';
      const payload = method === 'GET' || method === 'DELETE' ? (rnd() < 0.05 ? body() : undefined) : body();
      const contentType = payload === undefined ? undefined : rnd() < 0.9 ? 'application/json' : pick(['text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1']);
      const abort = new AbortController();
      const res = await request(h.controller.url + path + query, {
        method,
        headers: { authorization: `Bearer ${KEY}`, ...(contentType ? { 'content-type': contentType } : {}), ...(rnd() < 0.05 ? { 'last-event-id': enc(str()).slice(0, 100) } : {}) },
        ...(payload !== undefined ? { body: payload } : {}),
        signal: abort.signal,
      });
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      if (res.statusCode >= 500) fivexx.push(`${method} ${path.slice(0, 120)}${query.slice(0, 60)} ${(payload ?? '').slice(0, 120)} → ${res.statusCode} ${(await res.body.text()).slice(0, 200)}`);
      // Streams (events, logs, attached runs) are left at once: the status is what is checked.
      if (String(res.headers['content-type']).startsWith('text/event-stream')) abort.abort();
      else await res.body.dump();
    }
    // The run reaches handlers, not only the parser: fixed by the seed (measured: 200, 400, 404, 414, 415).
    expect([200, 400, 404].every((s) => (statuses.get(s) ?? 0) > 50)).toBe(true);
    expect(fivexx).toEqual([]);
    expect([...statuses.keys()].every((s) => s < 500)).toBe(true);
    // Still answering, the fixture intact.
    expect((await h.client.getApp('fz')).releaseId).toBe(release.id);
    expect(Object.getPrototypeOf({}).polluted).toBeUndefined();
  }, 60_000);
});
