import { describe, expect, it } from 'vitest';
import type { FormationChange, RouteChange, Store } from '../store.js';
import type { ControllerEvent } from '../types.js';

/** Builds a fresh, empty store; `reopen` (optional) opens a second store on the same data. */
export interface StoreFactory {
  (): Promise<{ store: Store; reopen: () => Promise<Store>; cleanup?: () => Promise<void> }>;
}

export const KEY_ED25519 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIDF+qw9eSv0nwz2OrpXNGkGWYPhkVz0pyZzUyDVDEi2 alice@example';
export const KEY_ED25519_FP = 'SHA256:coyOFDpLxJzBxWKJfJuxWiY4GiQuYcsBCOVDXmNrcck';

async function take<T>(iterable: AsyncIterable<T>, n: number, timeoutMs = 5000): Promise<T[]> {
  const out: T[] = [];
  const it = iterable[Symbol.asyncIterator]();
  const timer = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`timed out waiting for ${n} items (got ${out.length})`)), timeoutMs).unref());
  while (out.length < n) {
    const r = await Promise.race([it.next(), timer]);
    if (r.done) break;
    out.push(r.value);
  }
  await it.return?.();
  return out;
}

/** The id of the store's last event ('0' for none): a watch from it sees every later change, however late it opens. */
async function lastEventId(store: Store): Promise<string> {
  return String(Math.max(0, ...(await store.listEvents()).map((e) => Number(e.id))));
}

/** The one conformance suite every {@link Store} backend passes. */
export function describeStore(name: string, factory: StoreFactory): void {
  describe(`Store conformance: ${name}`, () => {
    const open = async () => {
      const made = await factory();
      return { ...made, [Symbol.asyncDispose]: async () => { await made.store.close(); await made.cleanup?.(); } };
    };

    it('creates apps with unique DNS-label names and finds them by id or name', async () => {
      await using s = await open();
      const app = await s.store.createApp({ name: 'web-1', meta: { team: 'a' } });
      expect(app).toMatchObject({ name: 'web-1', meta: { team: 'a' }, releaseId: null, strategy: 'all-at-once' });
      expect(await s.store.getApp('web-1')).toEqual(app);
      expect(await s.store.getApp(app.id)).toEqual(app);
      await expect(s.store.createApp({ name: 'web-1' })).rejects.toMatchObject({ code: 'FLYNN_ERR_CONTROLLER_NAME_TAKEN' });
      await expect(s.store.createApp({ name: 'Bad_Name' })).rejects.toMatchObject({ code: 'FLYNN_ERR_CONTROLLER_INVALID_INPUT', detail: { field: 'name' } });
      await expect(s.store.getApp('nope')).rejects.toMatchObject({ code: 'FLYNN_ERR_CONTROLLER_APP_NOT_FOUND' });
      expect((await s.store.listApps()).map((a) => a.name)).toEqual(['web-1']);
    });

    it('lets only one of many concurrent creates of the same name win', async () => {
      await using s = await open();
      const results = await Promise.allSettled(Array.from({ length: 6 }, () => s.store.createApp({ name: 'race' })));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(results.filter((r) => r.status === 'rejected').every((r) => (r as PromiseRejectedResult).reason.code === 'FLYNN_ERR_CONTROLLER_NAME_TAKEN')).toBe(true);
    });

    it('numbers releases v1, v2, ... per app, even when created concurrently', async () => {
      await using s = await open();
      const a = await s.store.createApp({ name: 'a' });
      const b = await s.store.createApp({ name: 'b' });
      const art = await s.store.createArtifact({ url: 'http://127.0.0.1/slug.tgz', processes: { web: { cmd: ['node', 'server.js'] } } });
      const made = await Promise.all(Array.from({ length: 5 }, (_, i) => s.store.createRelease(a.id, { artifactId: art.id, env: { N: String(i) }, processes: art.processes })));
      expect(made.map((r) => r.version).sort()).toEqual([1, 2, 3, 4, 5]);
      expect((await s.store.createRelease('b', { artifactId: null, env: {}, processes: {} })).version).toBe(1);
      expect((await s.store.listReleases(a.id)).map((r) => r.version)).toEqual([1, 2, 3, 4, 5]);
      const v3 = await s.store.getRelease('a', 'v3');
      expect(await s.store.getRelease('a', v3.id)).toEqual(v3);
      await expect(s.store.getRelease('a', 'v9')).rejects.toMatchObject({ code: 'FLYNN_ERR_CONTROLLER_NOT_FOUND' });
      await expect(s.store.createRelease(b.id, { artifactId: 'missing', env: {}, processes: {} })).rejects.toMatchObject({ detail: { field: 'artifactId' } });
    });

    it('keeps formations per release and streams their changes', async () => {
      await using s = await open();
      const app = await s.store.createApp({ name: 'f' });
      const r1 = await s.store.createRelease(app.id, { artifactId: null, env: {}, processes: { web: { cmd: ['x'] } } });
      const changes = take<FormationChange>(s.store.watchFormations({ afterEventId: await lastEventId(s.store) }), 2);
      const f = await s.store.putFormation('f', r1.id, { web: 3, worker: 0 });
      expect(f.processes).toEqual({ web: 3 });
      expect(await s.store.getFormation(app.id, r1.id)).toEqual(f);
      expect(await s.store.listFormations()).toEqual([f]);
      await s.store.deleteFormation(app.id, r1.id);
      expect(await changes).toEqual([{ type: 'put', formation: f }, { type: 'delete', appId: app.id, releaseId: r1.id }]);
      await expect(s.store.putFormation(app.id, r1.id, { web: -1 })).rejects.toMatchObject({ detail: { field: 'processes.web' } });
    });

    it("keeps an app's scale, zeros included", async () => {
      await using s = await open();
      const app = await s.store.createApp({ name: 's' });
      expect(app.scale).toEqual({});
      const scaled = await s.store.setAppScale('s', { web: 0, worker: 3 });
      expect(scaled.scale).toEqual({ web: 0, worker: 3 });
      expect((await s.store.getApp(app.id)).scale).toEqual({ web: 0, worker: 3 });
      await expect(s.store.setAppScale('s', { web: 1.5 })).rejects.toMatchObject({ detail: { field: 'processes.web' } });
      await expect(s.store.setAppScale('nope', {})).rejects.toMatchObject({ code: 'FLYNN_ERR_CONTROLLER_APP_NOT_FOUND' });
    });

    it('rejects a second route on the same domain+path or tcp port and streams route changes', async () => {
      await using s = await open();
      const app = await s.store.createApp({ name: 'r' });
      const changes = take<RouteChange>(s.store.watchRoutes({ afterEventId: await lastEventId(s.store) }), 3);
      const http = await s.store.createRoute(app.id, { type: 'http', domain: 'r.example.com', service: 'r-web' });
      expect(http).toMatchObject({ type: 'http', path: '/', sticky: false, service: 'r-web' });
      expect(http.id).toMatch(/^http\/[0-9a-f-]{36}$/);
      const tcp = await s.store.createRoute(app.id, { type: 'tcp', port: 4444, service: 'r-db' });
      expect(tcp.id).toMatch(/^tcp\//);
      await expect(s.store.createRoute(app.id, { type: 'http', domain: 'r.example.com', service: 'x' })).rejects.toMatchObject({ kind: 'conflict' });
      await expect(s.store.createRoute(app.id, { type: 'tcp', port: 4444, service: 'x' })).rejects.toMatchObject({ kind: 'conflict' });
      await s.store.createRoute(app.id, { type: 'http', domain: 'r.example.com', path: '/api', service: 'x' });
      expect(await s.store.listRoutes('r')).toHaveLength(3);
      await s.store.deleteRoute(app.id, http.id);
      expect((await changes).map((c) => c.type)).toEqual(['put', 'put', 'put']);
      await s.store.createRoute(app.id, { type: 'http', domain: 'r.example.com', service: 'again' });
    });

    it("records a route's ACME state and issued pair only while it asks for ACME, and keeps one account key", async () => {
      await using s = await open();
      const app = await s.store.createApp({ name: 'acme' });
      const route = await s.store.createRoute(app.id, { type: 'http', domain: 'acme.example.com', service: 'acme-web', acme: true });
      expect(route).toMatchObject({ acme: { status: 'pending' } });
      const tls = { cert: '-----BEGIN CERTIFICATE-----\nc\n-----END CERTIFICATE-----\n', key: '-----BEGIN PRIVATE KEY-----\nk\n-----END PRIVATE KEY-----\n' };
      const issued = await s.store.recordAcme(app.id, route.id, { acme: { status: 'issued', expiresAt: '2030-01-01T00:00:00.000Z', updatedAt: '2029-10-01T00:00:00.000Z' }, tls });
      expect(issued).toMatchObject({ acme: { status: 'issued' }, tls });
      // An uploaded pair replaces the automatic one; then the ACME client's late writes are dropped.
      await s.store.updateRoute(app.id, route.id, { tls: { ...tls, cert: tls.cert.replace('c', 'u') } });
      expect(await s.store.recordAcme(app.id, route.id, { acme: { status: 'failed', error: 'late', updatedAt: '2029-10-02T00:00:00.000Z' } })).toBeUndefined();
      expect(await s.store.getRoute(app.id, route.id)).not.toHaveProperty('acme');
      const first = await s.store.acmeAccountKey('key-1');
      expect(first).toBe('key-1');
      expect(await s.store.acmeAccountKey('key-2')).toBe('key-1');
      expect((await s.store.listEvents()).map((e) => JSON.stringify(e.data)).join()).not.toContain('key-1');
    });

    it('deletes an app with everything it owns and frees its name', async () => {
      await using s = await open();
      const app = await s.store.createApp({ name: 'gone' });
      const r1 = await s.store.createRelease(app.id, { artifactId: null, env: {}, processes: { web: { cmd: ['x'] } } });
      await s.store.putFormation(app.id, r1.id, { web: 1 });
      await s.store.createRoute(app.id, { type: 'tcp', port: 5555, service: 'gone-web' });
      await s.store.deleteApp('gone');
      await expect(s.store.getApp(app.id)).rejects.toMatchObject({ code: 'FLYNN_ERR_CONTROLLER_APP_NOT_FOUND' });
      expect(await s.store.listFormations()).toEqual([]);
      expect(await s.store.listRoutes()).toEqual([]);
      const again = await s.store.createApp({ name: 'gone' });
      expect((await s.store.createRelease(again.id, { artifactId: null, env: {}, processes: {} })).version).toBe(1);
      await s.store.createRoute(again.id, { type: 'tcp', port: 5555, service: 'gone-web' });
    });

    it('fingerprints keys like ssh-keygen and removes them by id or fingerprint', async () => {
      await using s = await open();
      const key = await s.store.addKey(KEY_ED25519);
      expect(key).toMatchObject({ fingerprint: KEY_ED25519_FP, comment: 'alice@example' });
      await expect(s.store.addKey(KEY_ED25519)).rejects.toMatchObject({ kind: 'conflict' });
      await expect(s.store.addKey('ssh-ed25519 not-a-key')).rejects.toMatchObject({ detail: { field: 'key' } });
      expect(await s.store.listKeys()).toEqual([key]);
      await s.store.removeKey(KEY_ED25519_FP);
      expect(await s.store.listKeys()).toEqual([]);
      await expect(s.store.removeKey(key.id)).rejects.toMatchObject({ kind: 'not_found' });
    });

    it('records deployment steps with their formation and release writes in one transaction, and enforces the transitions', async () => {
      await using s = await open();
      const app = await s.store.createApp({ name: 'd' });
      const web = { web: { cmd: ['web'] } };
      const r1 = await s.store.createRelease(app.id, { artifactId: null, env: {}, processes: web });
      const r2 = await s.store.createRelease(app.id, { artifactId: null, env: {}, processes: web });
      await s.store.putFormation(app.id, r1.id, { web: 2 });
      await s.store.setAppRelease(app.id, r1.id);
      const d = await s.store.createDeployment({ appId: app.id, oldReleaseId: r1.id, newReleaseId: r2.id, strategy: 'all-at-once', status: 'pending', state: 'pending', processes: { web: 2 }, oldProcesses: { web: 2 } });
      const started = await s.store.stepDeployment(app.id, d.id, { state: 'starting-new', formations: [{ releaseId: r2.id, processes: { web: 2 } }] });
      expect(started).toMatchObject({ state: 'starting-new', status: 'running' });
      expect((await s.store.listFormations(app.id)).map((f) => f.releaseId).sort()).toEqual([r1.id, r2.id].sort());
      // A step that fails writes nothing: not its state, not its formations.
      await expect(s.store.stepDeployment(app.id, d.id, { state: 'new-up', formations: [{ releaseId: r1.id, processes: null }], appReleaseId: 'no-such-release' })).rejects.toMatchObject({ kind: 'not_found' });
      expect((await s.store.getDeployment(app.id, d.id)).state).toBe('starting-new');
      expect(await s.store.getFormation(app.id, r1.id)).toBeDefined();
      await s.store.stepDeployment(app.id, d.id, { state: 'new-up', appReleaseId: r2.id });
      expect((await s.store.getApp(app.id)).releaseId).toBe(r2.id);
      await expect(s.store.stepDeployment(app.id, d.id, { state: 'rolling-back' })).rejects.toMatchObject({ kind: 'conflict' });
      await s.store.stepDeployment(app.id, d.id, { state: 'stopping-old', formations: [{ releaseId: r1.id, processes: null }] });
      expect((await s.store.listFormations(app.id)).map((f) => f.releaseId)).toEqual([r2.id]);
      const done = await s.store.stepDeployment(app.id, d.id, { state: 'done' });
      expect(done).toMatchObject({ state: 'done', status: 'complete', finishedAt: expect.any(String) });
      await expect(s.store.stepDeployment(app.id, d.id, { state: 'starting-new' })).rejects.toMatchObject({ kind: 'conflict' });
    });

    it('keeps an ordered event log and resumes a watch after a given event id', async () => {
      await using s = await open();
      const app = await s.store.createApp({ name: 'ev' });
      await s.store.updateApp(app.id, { meta: { a: '1' } });
      await s.store.createRelease(app.id, { artifactId: null, env: {}, processes: {} });
      const all = await s.store.listEvents();
      expect(all.map((e) => `${e.object}.${e.op}`)).toEqual(['app.create', 'app.update', 'release.create']);
      expect(all.map((e) => Number(e.id))).toEqual([1, 2, 3]);
      const resumed = take<ControllerEvent>(s.store.watchEvents({ afterId: all[0]?.id ?? '' }), 3);
      await s.store.deleteApp(app.id);
      expect((await resumed).map((e) => e.id)).toEqual(['2', '3', '4']);
    });

    it('ends watches on abort and on close, and refuses calls after close', async () => {
      const s = await open();
      const abort = new AbortController();
      const watch = s.store.watchEvents({ signal: abort.signal });
      const ended = take(watch, 1);
      abort.abort();
      expect(await ended).toEqual([]);
      const live = take(s.store.watchEvents(), 1);
      await s[Symbol.asyncDispose]();
      expect(await live).toEqual([]);
      await expect(s.store.listApps()).rejects.toMatchObject({ code: 'FLYNN_ERR_CLOSED' });
    });

    it("keeps components' state by key (the scheduler's crash backoff), apart from the backup", async () => {
      await using s = await open();
      await s.store.putState('scheduler/backoff/a/v1/web', '{"n":1}');
      await s.store.putState('scheduler/backoff/a/v1/worker', '{"n":2}');
      await s.store.putState('other/x', 'y');
      await s.store.putState('scheduler/backoff/a/v1/web', '{"n":3}');
      expect(await s.store.listState('scheduler/backoff/')).toEqual([
        ['scheduler/backoff/a/v1/web', '{"n":3}'],
        ['scheduler/backoff/a/v1/worker', '{"n":2}'],
      ]);
      await s.store.deleteState('scheduler/backoff/a/v1/web');
      await s.store.deleteState('scheduler/backoff/never');
      expect((await s.store.listState('')).map(([k]) => k)).toEqual(['other/x', 'scheduler/backoff/a/v1/worker']);
      expect((await s.store.dumpEntries()).filter(([, v]) => v === 'y' || v.includes('"n"'))).toEqual([]);
    });

    it('dumps every entry and restores them into a fresh store (a backup), refusing a store with apps', async () => {
      await using s = await open();
      await using fresh = await open();
      const app = await s.store.createApp({ name: 'saved' });
      const rel = await s.store.createRelease(app.id, { artifactId: null, env: { A: '1' }, processes: { web: { cmd: ['x'] } } });
      await s.store.putFormation(app.id, rel.id, { web: 1 });
      await s.store.createRoute(app.id, { type: 'http', domain: 'saved.example.com', service: 'saved-web' });
      await s.store.addKey(KEY_ED25519);
      // More entries than one etcd transaction takes.
      for (let i = 0; i < 150; i++) await s.store.updateApp(app.id, { meta: { n: String(i) } });
      const entries = await s.store.dumpEntries();
      await fresh.store.restoreEntries(entries);
      const state = async (st: Store) => ({ apps: await st.listApps(), releases: await st.listReleases(app.id), f: await st.listFormations(), routes: await st.listRoutes(), keys: await st.listKeys(), events: await st.listEvents() });
      expect(await state(fresh.store)).toEqual(await state(s.store));
      expect((await fresh.store.createRelease(app.id, { artifactId: null, env: {}, processes: {} })).version).toBe(2);
      await expect(fresh.store.restoreEntries(entries)).rejects.toMatchObject({ code: 'FLYNN_ERR_CONTROLLER_CONFLICT' });
    });

    it('keeps everything when reopened on the same data (a controller restart)', async () => {
      const made = await factory();
      const app = await made.store.createApp({ name: 'keep' });
      const rel = await made.store.createRelease(app.id, { artifactId: null, env: { A: '1' }, processes: { web: { cmd: ['x'] } } });
      await made.store.putFormation(app.id, rel.id, { web: 2 });
      await made.store.setAppRelease(app.id, rel.id);
      await made.store.setAppScale(app.id, { web: 2, worker: 0 });
      await made.store.createRoute(app.id, { type: 'http', domain: 'keep.example.com', service: 'keep-web' });
      await made.store.addKey(KEY_ED25519);
      const before = { apps: await made.store.listApps(), releases: await made.store.listReleases(app.id), f: await made.store.listFormations(), routes: await made.store.listRoutes(), keys: await made.store.listKeys(), events: await made.store.listEvents() };
      await made.store.close();
      const again = await made.reopen();
      try {
        expect({ apps: await again.listApps(), releases: await again.listReleases(app.id), f: await again.listFormations(), routes: await again.listRoutes(), keys: await again.listKeys(), events: await again.listEvents() }).toEqual(before);
        expect((await again.createRelease(app.id, { artifactId: null, env: {}, processes: {} })).version).toBe(2);
        await expect(again.createApp({ name: 'keep' })).rejects.toMatchObject({ code: 'FLYNN_ERR_CONTROLLER_NAME_TAKEN' });
      } finally {
        await again.close();
        await made.cleanup?.();
      }
    });
  });
}
