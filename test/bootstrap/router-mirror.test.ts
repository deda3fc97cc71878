/** The detached router's copy of routes and backends: what a restarted platform's snapshots do to it. */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/common/clock.js';
import { silentLogger } from '../../src/common/logger.js';
import { RouterMirror, type RouterSnapshot } from '../../src/bootstrap/router-mirror.js';

const route = { id: 'r1', type: 'http' as const, domain: 'a.flynn.local', service: 'a-web' };
const backend = (addr: string) => ({ addr, proto: 'http', meta: {} });
const snap = (session: string, addrs: string[]): RouterSnapshot => ({ session, routes: [route], backends: { 'a-web': addrs.map(backend) } });
const addrs = async (m: RouterMirror) => (await m.discovery.instances('a-web')).map((i) => i.addr).sort();

describe('RouterMirror', () => {
  it("drops a backend the same platform run no longer lists at once, and an earlier run's only after the grace period", async () => {
    const clock = new ManualClock(1_000_000);
    const mirror = new RouterMirror(silentLogger, { staleGraceMs: 300, clock });
    await mirror.apply(snap('run1', ['127.0.0.1:1', '127.0.0.1:2']));
    expect(await addrs(mirror)).toEqual(['127.0.0.1:1', '127.0.0.1:2']);
    await mirror.apply(snap('run1', ['127.0.0.1:1']));
    expect(await addrs(mirror)).toEqual(['127.0.0.1:1']);

    // A restarted platform whose host agents have not registered the adopted job yet: kept a while.
    const registration = (await mirror.discovery.instances('a-web'))[0]?.id;
    await mirror.apply({ session: 'run2', routes: [route], backends: {} });
    expect(await addrs(mirror)).toEqual(['127.0.0.1:1']);
    // Registered again by the new run: the same instance stays, no down/up.
    await mirror.apply(snap('run2', ['127.0.0.1:1', '127.0.0.1:3']));
    await clock.advance(400);
    expect(await addrs(mirror)).toEqual(['127.0.0.1:1', '127.0.0.1:3']);
    expect((await mirror.discovery.instances('a-web'))[0]?.id).toBe(registration);

    // A job of an earlier run that never comes back goes after the grace period.
    await mirror.apply(snap('run3', ['127.0.0.1:3']));
    expect(await addrs(mirror)).toEqual(['127.0.0.1:1', '127.0.0.1:3']);
    await clock.advance(299);
    expect(await addrs(mirror)).toEqual(['127.0.0.1:1', '127.0.0.1:3']);
    await clock.advance(1);
    expect(await addrs(mirror)).toEqual(['127.0.0.1:3']);
    expect(mirror.session).toBe('run3');
    await mirror.close();
  });

  it('replaces the route table with each snapshot', async () => {
    const mirror = new RouterMirror(silentLogger);
    await mirror.apply(snap('run1', []));
    expect((await mirror.routes.list()).map((r) => r.id)).toEqual(['r1']);
    // r1 gone and r2 taking its domain in one snapshot: no conflict.
    await mirror.apply({ session: 'run1', routes: [{ ...route, id: 'r2' }], backends: {} });
    expect((await mirror.routes.list()).map((r) => r.id)).toEqual(['r2']);
    await mirror.close();
  });
});
