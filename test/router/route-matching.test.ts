import { describe, expect, it } from 'vitest';
import { Backend, ServicePool } from '../../src/router/backends.js';
import { hostname, HttpRouteTable } from '../../src/router/route-table.js';
import { StickySigner, readCookie } from '../../src/router/sticky.js';
import type { HttpRoute } from '../../src/router/index.js';
import { validateRoute } from '../../src/router/index.js';

const http = (id: string, domain: string, path = '/'): HttpRoute => validateRoute({ id, type: 'http', domain, path, service: 'svc' }) as HttpRoute;

describe('router: route matching, balancing and cookies', () => {
  it('prefers the exact host, then the nearest wildcard, then the longest whole-segment path', () => {
    const table = new HttpRouteTable();
    for (const r of [http('exact', 'a.b.example.com'), http('near', '*.b.example.com'), http('far', '*.example.com'), http('far-api', '*.example.com', '/api/')]) table.set(r);
    expect(table.match('a.b.example.com', '/')?.id).toBe('exact');
    expect(table.match('x.b.example.com:8080', '/')?.id).toBe('near');
    expect(table.match('x.example.com', '/')?.id).toBe('far');
    expect(table.match('x.example.com', '/api/v1')?.id).toBe('far-api');
    expect(table.match('x.example.com', '/apiv1')?.id).toBe('far');
    expect(table.match('example.com', '/')).toBeUndefined();
    table.remove('far');
    expect(table.match('x.example.com', '/')).toBeUndefined();
    expect(table.match('x.example.com', '/api')?.id).toBe('far-api');
  });

  it('reads host names without port, case or trailing dot', () => {
    expect(hostname('App.Example.com.:443')).toBe('app.example.com');
    expect(hostname('[::1]:80')).toBe('[::1]');
  });

  it('balances on in-flight requests with two random choices and skips backends already tried or ejected', () => {
    const pool = new ServicePool('svc');
    pool.reset([
      { id: 'a', service: 'svc', addr: '127.0.0.2:1', proto: 'http', meta: {}, index: 1 },
      { id: 'b', service: 'svc', addr: '127.0.0.3:1', proto: 'http', meta: {}, index: 2 },
    ]);
    const [a, b] = pool.backends as [Backend, Backend];
    a.inFlight = 10;
    for (let i = 0; i < 50; i++) expect(pool.pick()).toBe(b);
    expect(pool.pick(new Set([b]))).toBe(a);
    expect(pool.pick(new Set([a, b]))).toBeUndefined();
    b.ejected = true;
    for (let i = 0; i < 20; i++) expect(pool.pick()).toBe(a);
  });

  it('sends a retry to backends it has known longer: a request reaches the old release when the 3 newest of 6 fail at once', () => {
    const pool = new ServicePool('svc');
    const instance = (n: number) => ({ id: `i${n}`, service: 'svc', addr: `127.0.0.2:${n}`, proto: 'http', meta: {}, index: n });
    pool.reset([1, 2, 3].map(instance));
    for (const n of [4, 5, 6]) pool.upsert(instance(n)); // the new release's jobs, up after the old ones
    const failing = new Set(pool.backends.slice(3));
    let lost = 0;
    for (let request = 0; request < 2_000; request++) {
      // One request's tries (maxAttempts 3): the first as any request, each retry skipping those tried.
      const tried = new Set<Backend>();
      let answered = false;
      for (let attempt = 0; attempt < 3 && !answered; attempt++) {
        const backend = pool.pick(attempt === 0 ? undefined : tried) as Backend;
        tried.add(backend);
        answered = !failing.has(backend);
      }
      if (!answered) lost++;
    }
    // Random retries lose 1 request in 20 so (3/6 · 2/5 · 1/4).
    expect(lost).toBe(0);
  });

  it('signs sticky cookies per route and rejects forged or foreign ones', () => {
    const signer = new StickySigner(Buffer.from('0123456789abcdef0123456789abcdef'));
    const value = signer.sign('route-1', '127.0.0.2:8080');
    expect(signer.verify('route-1', value)).toBe('127.0.0.2:8080');
    expect(signer.verify('route-2', value)).toBeUndefined();
    expect(new StickySigner(Buffer.from('another key of thirty-two bytes!')).verify('route-1', value)).toBeUndefined();
    expect(signer.verify('route-1', `${Buffer.from('127.0.0.9:1').toString('base64url')}.${value.split('.')[1]}`)).toBeUndefined();
    expect(signer.verify('route-1', 'garbage')).toBeUndefined();
    expect(readCookie('a=1; _backend=xyz; b=2', '_backend')).toBe('xyz');
  });
});
