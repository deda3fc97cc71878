/**
 * The one conformance suite every {@link Discovery} backend passes (memory, etcd, http, and any a
 * user writes): `describeDiscoveryConformance('mine', async () => ({ connect, ... }))` inside a
 * vitest test file.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DiscoveryConfig } from '../create.js';
import type { Discovery, ServiceWatch } from '../discovery.js';
import { campaign } from '../election.js';
import { DiscoveryInputError } from '../errors.js';
import type { Instance, RegisterOptions, ServiceEvent } from '../types.js';
import { startOwnerProcess } from './owner.js';

/** A backend under test. */
export interface ConformanceTarget {
  /** A new handle on the same backend (the suite closes every handle it opens). */
  connect(): Discovery | Promise<Discovery>;
  /**
   * Register an instance whose owner then dies without unregistering. Backends reachable from
   * another process give `config` instead and the suite does this with a real child process that
   * it SIGKILLs; in-process backends implement this by registering with nobody heartbeating.
   */
  registerAbandoned?(options: RegisterOptions): Promise<Instance>;
  /** Config for `createDiscovery` in a child process that reaches the same backend. */
  config?: DiscoveryConfig;
  /**
   * A backend on a `ManualClock` (its TTLs and heartbeats on it): move time on. The owner-death
   * scenario then checks the expiry exactly (kept until the TTL, gone within it + 1 s) without waiting.
   */
  advance?(ms: number): Promise<void>;
  /** Release what the factory started. */
  close?(): Promise<void>;
}

/** Reads events off a watch with a deadline per wait. */
export class EventReader {
  private readonly iterator: AsyncIterator<ServiceEvent>;
  constructor(readonly watch: ServiceWatch) {
    this.iterator = watch[Symbol.asyncIterator]();
  }

  /** The next event, or a rejection after `timeoutMs`. */
  async next(timeoutMs = 5_000): Promise<ServiceEvent> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no event within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const result = await Promise.race([this.iterator.next(), timeout]);
      if (result.done) throw new Error('watch ended');
      return result.value;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Skip events until one matches; rejects after `timeoutMs` in total. */
  async until(match: (event: ServiceEvent) => boolean, timeoutMs = 5_000): Promise<ServiceEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const event = await this.next(Math.max(1, deadline - Date.now()));
      if (match(event)) return event;
    }
  }
}

const TTL_MS = 2_000;

/** Register the conformance scenarios for one backend as a vitest `describe` block. */
export function describeDiscoveryConformance(name: string, factory: () => Promise<ConformanceTarget>): void {
  describe(`discovery conformance: ${name}`, () => {
    let target: ConformanceTarget;
    let open: Discovery[] = [];
    const run = randomBytes(3).toString('hex');
    let n = 0;
    const service = () => `conf-${run}-${++n}`;
    const connect = async () => {
      const d = await target.connect();
      open.push(d);
      return d;
    };
    const reader = (d: Discovery, svc: string) => new EventReader(d.watch(svc));
    const addr = (port: number) => `127.0.0.1:${port}`;

    beforeAll(async () => {
      target = await factory();
    });
    afterEach(async () => {
      await Promise.all(open.map((d) => d.close()));
      open = [];
    });
    afterAll(async () => {
      await target?.close?.();
    });

    it('lists a registered instance, and a watcher hears current first, then up, update and down', async () => {
      const d = await connect();
      const svc = service();
      const watch = reader(d, svc);
      const current = await watch.next();
      expect(current).toEqual({ type: 'current', service: svc, instances: [], leader: null });

      const reg = await d.register({ service: svc, addr: addr(8080), meta: { role: 'web' } });
      expect(reg.instance).toMatchObject({ service: svc, addr: addr(8080), proto: 'http', meta: { role: 'web' } });
      const up = await watch.next();
      expect(up).toMatchObject({ type: 'up', instance: { id: reg.instance.id, addr: addr(8080) } });
      expect(await watch.next()).toMatchObject({ type: 'leader', leader: { id: reg.instance.id } });
      expect(await d.instances(svc)).toEqual([expect.objectContaining({ id: reg.instance.id, meta: { role: 'web' } })]);

      await reg.setMeta({ role: 'web', version: '2' });
      expect(await watch.next()).toMatchObject({ type: 'update', instance: { id: reg.instance.id, meta: { role: 'web', version: '2' } } });
      expect(reg.instance.meta).toEqual({ role: 'web', version: '2' });
      expect((await d.instances(svc))[0]?.meta).toEqual({ role: 'web', version: '2' });

      await reg.unregister();
      expect(await watch.next()).toMatchObject({ type: 'down', instance: { id: reg.instance.id } });
      expect(await watch.next()).toEqual({ type: 'leader', service: svc, leader: null });
      expect(await d.instances(svc)).toEqual([]);
      await reg.unregister(); // idempotent
      watch.watch.close();
    });

    it('shows instances registered through another handle, oldest first, and a late watcher gets them in current', async () => {
      const a = await connect();
      const b = await connect();
      const svc = service();
      const first = await a.register({ service: svc, addr: addr(1001), proto: 'tcp' });
      const second = await b.register({ service: svc, addr: addr(1002) });
      expect(second.instance.index).toBeGreaterThan(first.instance.index);
      expect((await b.instances(svc)).map((i) => i.id)).toEqual([first.instance.id, second.instance.id]);
      expect((await a.instances(svc))[0]?.proto).toBe('tcp');
      const current = await reader(b, svc).next();
      expect(current).toMatchObject({ type: 'current', leader: { id: first.instance.id } });
      expect(current.type === 'current' && current.instances.map((i) => i.id)).toEqual([first.instance.id, second.instance.id]);
    });

    it('hands leadership to the next oldest live instance and tells watchers', async () => {
      const d = await connect();
      const svc = service();
      const regs = [];
      for (let i = 0; i < 3; i++) regs.push(await d.register({ service: svc, addr: addr(2000 + i) }));
      const [r0, r1, r2] = regs as [(typeof regs)[0], (typeof regs)[0], (typeof regs)[0]];
      expect((await d.leader(svc))?.id).toBe(r0.instance.id);
      const watch = reader(await connect(), svc);
      expect(await watch.next()).toMatchObject({ type: 'current', leader: { id: r0.instance.id } });

      await r1.unregister(); // not the leader: no leader event
      expect(await watch.next()).toMatchObject({ type: 'down', instance: { id: r1.instance.id } });
      await r0.unregister();
      expect(await watch.next()).toMatchObject({ type: 'down', instance: { id: r0.instance.id } });
      expect(await watch.next()).toMatchObject({ type: 'leader', leader: { id: r2.instance.id } });
      expect((await d.leader(svc))?.id).toBe(r2.instance.id);
    });

    it('delivers the same events to many watchers', async () => {
      const d = await connect();
      const watcherHandle = await connect();
      const svc = service();
      const watches = Array.from({ length: 12 }, () => reader(watcherHandle, svc));
      for (const w of watches) expect((await w.next()).type).toBe('current');
      const reg = await d.register({ service: svc, addr: addr(3000) });
      await reg.setMeta({ k: 'v' });
      await reg.unregister();
      for (const w of watches) {
        const types = [];
        for (let i = 0; i < 5; i++) types.push((await w.next()).type);
        expect(types).toEqual(['up', 'leader', 'update', 'down', 'leader']);
      }
    });

    it('rejects bad input with a DiscoveryInputError that names the field', async () => {
      const d = await connect();
      const svc = service();
      const cases: [() => Promise<unknown>, string][] = [
        [() => d.register({ service: 'Bad_Name', addr: addr(1) }), 'service'],
        [() => d.register({ service: '', addr: addr(1) }), 'service'],
        [() => d.register({ service: svc, addr: 'no-port' }), 'addr'],
        [() => d.register({ service: svc, addr: '127.0.0.1:99999' }), 'addr'],
        [() => d.register({ service: svc, addr: addr(1), ttlMs: 5 }), 'ttlMs'],
        [() => d.register({ service: svc, addr: addr(1), proto: 'HTTP SPACE' }), 'proto'],
        [() => d.register({ service: svc, addr: addr(1), meta: { n: 1 as unknown as string } }), 'meta'],
        [() => d.instances('../etc'), 'service'],
        [() => d.leader('UPPER'), 'service'],
        [async () => d.watch('no/slash'), 'service'],
      ];
      for (const [call, field] of cases) {
        const err = await call().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err, `expected a DiscoveryInputError on ${field}`).toBeInstanceOf(DiscoveryInputError);
        expect((err as DiscoveryInputError).detail).toMatchObject({ field });
        expect((err as DiscoveryInputError).code).toMatch(/^FLYNN_ERR_DISCOVERY_INVALID_/);
      }
      const reg = await d.register({ service: svc, addr: addr(1) });
      await expect(reg.setMeta({ n: 1 as unknown as string })).rejects.toMatchObject({ detail: { field: 'meta' } });
      expect(await d.instances(svc)).toHaveLength(1);
    });

    it(`drops an instance whose owner dies without unregistering, once its TTL (${TTL_MS} ms) runs out`, async () => {
      const d = await connect();
      const svc = service();
      const watch = reader(d, svc);
      await watch.next();
      const options: RegisterOptions = { service: svc, addr: addr(4000), ttlMs: TTL_MS };
      let id: string;
      if (target.config) {
        const owner = await startOwnerProcess(target.config, options);
        id = owner.id;
        expect(await watch.until((e) => e.type === 'up')).toMatchObject({ instance: { id } });
        // Outlive a few heartbeats first: the instance must stay while its owner lives.
        await new Promise((resolve) => setTimeout(resolve, TTL_MS * 1.5));
        expect((await d.instances(svc)).map((i) => i.id)).toEqual([id]);
        await owner.kill();
      } else if (target.registerAbandoned) {
        id = (await target.registerAbandoned(options)).id;
        expect(await watch.until((e) => e.type === 'up')).toMatchObject({ instance: { id } });
        if (target.advance) {
          await target.advance(TTL_MS - 1);
          expect((await d.instances(svc)).map((i) => i.id)).toEqual([id]);
          await target.advance(1_001);
        }
      } else {
        throw new Error('a conformance target needs config or registerAbandoned for the owner-death scenario');
      }
      // How soon after the death is a figure of bench/discovery (`npm run bench -- discovery`), not a bound here.
      const down = await watch.until((e) => e.type === 'down', TTL_MS + 10_000);
      expect(down).toMatchObject({ instance: { id } });
      expect(await d.instances(svc)).toEqual([]);
    });

    it('campaign() wins when alone, waits while another leads, and wins when the leader resigns', async () => {
      const a = await connect();
      const b = await connect();
      const svc = service();
      const first = await campaign(a, { service: svc, addr: addr(5001) });
      expect((await a.leader(svc))?.id).toBe(first.registration.instance.id);
      const watch = reader(a, svc);
      await watch.next(); // the watch's `current`: the second's registration comes after it, as an `up`
      let secondWon = false;
      const secondP = campaign(b, { service: svc, addr: addr(5002) }).then((l) => {
        secondWon = true;
        return l;
      });
      // The second candidate stands (registered) and must wait: the first still leads.
      await watch.until((e) => e.type === 'up' && e.instance.addr === addr(5002));
      expect((await b.leader(svc))?.id).toBe(first.registration.instance.id);
      expect(secondWon).toBe(false);
      await first.resign();
      await first.lost;
      const second = await secondP;
      expect((await b.leader(svc))?.id).toBe(second.registration.instance.id);
      await second.resign();
    });

    it('campaign() rejects and withdraws when aborted before winning', async () => {
      const a = await connect();
      const svc = service();
      const leader = await campaign(a, { service: svc, addr: addr(6001) });
      const controller = new AbortController();
      const watch = reader(a, svc);
      await watch.next(); // the watch's `current`: the registration below comes after it, as an `up`
      const losing = campaign(a, { service: svc, addr: addr(6002), signal: controller.signal });
      await watch.until((e) => e.type === 'up' && e.instance.addr === addr(6002)); // standing, not winning
      controller.abort(new Error('gave up'));
      await expect(losing).rejects.toThrow('gave up');
      expect((await a.instances(svc)).map((i) => i.addr)).toEqual([addr(6001)]);
      await leader.resign();
    });

    it('ends a watch when it is closed or its signal aborts', async () => {
      const d = await connect();
      const svc = service();
      const closed = d.watch(svc);
      const it1 = closed[Symbol.asyncIterator]();
      expect((await it1.next()).value).toMatchObject({ type: 'current' });
      closed.close();
      expect((await it1.next()).done).toBe(true);
      const controller = new AbortController();
      const aborted = d.watch(svc, { signal: controller.signal });
      const it2 = aborted[Symbol.asyncIterator]();
      expect((await it2.next()).value).toMatchObject({ type: 'current' });
      controller.abort();
      expect((await it2.next()).done).toBe(true);
    });
  });
}
