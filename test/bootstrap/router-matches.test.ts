/** A platform re-attaches to a running router only when it listens, and logs, as the platform asks. */
import { describe, expect, it } from 'vitest';
import { routerMatches, type RouterStatus } from '../../src/bootstrap/router-process.js';

const bound = (port: number) => ({ host: '127.0.0.1', port, url: `http://127.0.0.1:${port}` });
const status = (extra: Partial<RouterStatus> = {}): RouterStatus => ({ pid: 1, http: bound(8080), https: bound(8443), session: null, startedAt: '', routes: 0, backends: 0, ...extra });
const want = { http: { host: '127.0.0.1', port: 8080 }, https: { host: '127.0.0.1', port: 8443 } };

describe('routerMatches', () => {
  it('takes a router without access log or metrics when none is asked (one from an older flynn-ts too)', () => {
    expect(routerMatches(status(), want)).toBe(true);
    expect(routerMatches(status({ metrics: null, accessLog: null }), want)).toBe(true);
  });

  it('replaces a router whose metrics listener or access log differ from what is asked', () => {
    const log = { format: 'json' as const, file: '/d/router-access.log' };
    expect(routerMatches(status(), { ...want, metrics: { host: '127.0.0.1', port: 0 } })).toBe(false);
    expect(routerMatches(status({ metrics: bound(9100) }), { ...want, metrics: { host: '127.0.0.1', port: 0 } })).toBe(true);
    expect(routerMatches(status({ metrics: bound(9100) }), { ...want, metrics: { host: '127.0.0.1', port: 9101 } })).toBe(false);
    expect(routerMatches(status({ metrics: bound(9100) }), want)).toBe(false);
    expect(routerMatches(status(), { ...want, accessLog: log })).toBe(false);
    expect(routerMatches(status({ accessLog: log }), { ...want, accessLog: log })).toBe(true);
    expect(routerMatches(status({ accessLog: log }), { ...want, accessLog: { ...log, format: 'combined' } })).toBe(false);
    expect(routerMatches(status({ accessLog: log }), want)).toBe(false);
  });
});
