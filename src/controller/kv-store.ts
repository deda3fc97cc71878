import { randomUUID } from 'node:crypto';
import { AsyncQueue } from '../common/async-queue.js';
import { CloseGuard } from '../common/lifecycle.js';
import { AppNotFoundError, ControllerConflictError, ControllerInputError, NameTakenError, ObjectNotFoundError } from './errors.js';
import type { Kv, KvTxn } from './kv.js';
import type { DeployStep, FormationChange, NewRelease, RouteChange, Store, WatchOptions } from './store.js';
import {
  DEPLOY_STATE_STATUS,
  DEPLOY_TRANSITIONS,
  deployStateOf,
  type App,
  type Artifact,
  type ControllerEvent,
  type CreateAppInput,
  type CreateArtifactInput,
  type CreateRouteInput,
  type Deployment,
  type EventObject,
  type EventOp,
  type Formation,
  type HttpRoute,
  type HttpRouteAcme,
  type HttpRouteTls,
  type Key,
  type Release,
  type Route,
  type UpdateAppInput,
  type UpdateHttpRouteInput,
} from './types.js';
import { parsePublicKey, validateAppName } from './validate.js';

const SEQ = 'seq';
/** Prefix of the components' state ({@link Store.putState}). */
const STATE = 'state/';
/** The ACME account's private key (PEM): written once, never in an event or an API answer. */
const ACME_ACCOUNT_KEY = 'acme/account-key';
const pad = (n: number, width: number) => String(n).padStart(width, '0');
const eventKey = (seq: number) => `events/${pad(seq, 16)}`;
const now = () => new Date().toISOString();

export interface KvStoreOptions {
  /** Events kept for replay (`Last-Event-Id`); older ones are deleted as new ones are written. Default 10 000 events. */
  eventRetention?: number;
}

export const KV_STORE_DEFAULTS = Object.freeze({ eventRetention: 10_000 });

type Emit = (object: EventObject, op: EventOp, appId: string | null, objectId: string, data: unknown) => void;

/**
 * The {@link Store} logic over any {@link Kv}: name uniqueness, release numbering, cascades and
 * the event log, each mutation one transaction.
 */
export class KvStore implements Store {
  private readonly guard: CloseGuard;
  private readonly queues = new Set<AsyncQueue<ControllerEvent>>();

  private readonly eventRetention: number;

  constructor(
    private readonly kv: Kv,
    what = 'controller store',
    options: KvStoreOptions = {},
  ) {
    this.guard = new CloseGuard(what);
    this.eventRetention = options.eventRetention ?? KV_STORE_DEFAULTS.eventRetention;
  }

  // ---- apps ----

  async createApp(input: CreateAppInput): Promise<App> {
    const name = validateAppName(input.name);
    return this.mutate(async (tx, emit) => {
      if ((await tx.get(`app-names/${name}`)) !== undefined) throw new NameTakenError(name);
      const t = now();
      const app: App = { id: randomUUID(), name, meta: { ...input.meta }, releaseId: null, strategy: input.strategy ?? 'all-at-once', scale: {}, createdAt: t, updatedAt: t };
      tx.put(`apps/${app.id}`, JSON.stringify(app));
      tx.put(`app-names/${name}`, app.id);
      emit('app', 'create', app.id, app.id, app);
      return app;
    });
  }

  async getApp(app: string): Promise<App> {
    this.guard.assertOpen();
    return this.findApp(this.kv, app);
  }

  async listApps(): Promise<App[]> {
    this.guard.assertOpen();
    const apps = (await this.kv.list('apps/')).map(([, v]) => JSON.parse(v) as App);
    return apps.sort((a, b) => a.name.localeCompare(b.name));
  }

  async updateApp(ref: string, patch: UpdateAppInput): Promise<App> {
    return this.mutate(async (tx, emit) => {
      const app = await this.findApp(tx, ref);
      const next: App = { ...app, meta: patch.meta ? { ...patch.meta } : app.meta, strategy: patch.strategy ?? app.strategy, updatedAt: now() };
      tx.put(`apps/${app.id}`, JSON.stringify(next));
      emit('app', 'update', app.id, app.id, next);
      return next;
    });
  }

  async setAppRelease(ref: string, releaseId: string | null): Promise<App> {
    return this.mutate(async (tx, emit) => {
      const app = await this.findApp(tx, ref);
      if (releaseId !== null && !(await this.findRelease(tx, app.id, releaseId))) throw new ObjectNotFoundError('release', releaseId);
      const next: App = { ...app, releaseId, updatedAt: now() };
      tx.put(`apps/${app.id}`, JSON.stringify(next));
      emit('app', 'update', app.id, app.id, next);
      return next;
    });
  }

  async setAppScale(ref: string, scale: Record<string, number>): Promise<App> {
    assertCounts(scale);
    return this.mutate(async (tx, emit) => {
      const app = await this.findApp(tx, ref);
      const next: App = { ...app, scale: { ...scale }, updatedAt: now() };
      tx.put(`apps/${app.id}`, JSON.stringify(next));
      emit('app', 'update', app.id, app.id, next);
      return next;
    });
  }

  async deleteApp(ref: string): Promise<App> {
    return this.mutate(async (tx, emit) => {
      const app = await this.findApp(tx, ref);
      for (const [, v] of await tx.list(`formations/${app.id}/`)) {
        const f = JSON.parse(v) as Formation;
        emit('formation', 'delete', app.id, f.releaseId, { appId: app.id, releaseId: f.releaseId });
      }
      for (const [, v] of await tx.list(`routes/${app.id}/`)) {
        const route = JSON.parse(v) as Route;
        tx.delete(routeIndexKey(route));
        emit('route', 'delete', app.id, route.id, route);
      }
      for (const prefix of ['releases', 'formations', 'deployments', 'routes']) tx.deletePrefix(`${prefix}/${app.id}/`);
      tx.delete(`apps/${app.id}`);
      tx.delete(`app-names/${app.name}`);
      tx.delete(`release-seq/${app.id}`);
      emit('app', 'delete', app.id, app.id, app);
      return app;
    });
  }

  // ---- artifacts ----

  async createArtifact(input: CreateArtifactInput): Promise<Artifact> {
    return this.mutate(async (tx, emit) => {
      const artifact: Artifact = { id: randomUUID(), type: input.type ?? 'slug', url: input.url, processes: structuredClone(input.processes ?? {}), createdAt: now() };
      if (input.archiveUrl !== undefined) artifact.archiveUrl = input.archiveUrl;
      if (input.sha256 !== undefined) artifact.sha256 = input.sha256;
      tx.put(`artifacts/${artifact.id}`, JSON.stringify(artifact));
      emit('artifact', 'create', null, artifact.id, artifact);
      return artifact;
    });
  }

  async getArtifact(id: string): Promise<Artifact> {
    this.guard.assertOpen();
    const raw = await this.kv.get(`artifacts/${id}`);
    if (raw === undefined) throw new ObjectNotFoundError('artifact', id);
    return JSON.parse(raw) as Artifact;
  }

  async listArtifacts(): Promise<Artifact[]> {
    this.guard.assertOpen();
    return (await this.kv.list('artifacts/')).map(([, v]) => JSON.parse(v) as Artifact).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  // ---- releases ----

  async createRelease(ref: string, input: NewRelease): Promise<Release> {
    return this.mutate(async (tx, emit) => {
      const app = await this.findApp(tx, ref);
      if (input.artifactId !== null && (await tx.get(`artifacts/${input.artifactId}`)) === undefined) {
        throw new ControllerInputError('artifactId', `no artifact ${JSON.stringify(input.artifactId)}`);
      }
      const version = Number((await tx.get(`release-seq/${app.id}`)) ?? '0') + 1;
      const release: Release = { id: randomUUID(), appId: app.id, version, artifactId: input.artifactId, env: { ...input.env }, processes: structuredClone(input.processes), createdAt: now() };
      tx.put(`release-seq/${app.id}`, String(version));
      tx.put(`releases/${app.id}/${pad(version, 10)}`, JSON.stringify(release));
      emit('release', 'create', app.id, release.id, release);
      return release;
    });
  }

  async getRelease(ref: string, release: string): Promise<Release> {
    this.guard.assertOpen();
    const app = await this.findApp(this.kv, ref);
    const found = await this.findRelease(this.kv, app.id, release);
    if (!found) throw new ObjectNotFoundError('release', release);
    return found;
  }

  async listReleases(ref: string): Promise<Release[]> {
    this.guard.assertOpen();
    const app = await this.findApp(this.kv, ref);
    return (await this.kv.list(`releases/${app.id}/`)).map(([, v]) => JSON.parse(v) as Release);
  }

  // ---- formations ----

  async putFormation(ref: string, releaseId: string, processes: Record<string, number>): Promise<Formation> {
    assertCounts(processes);
    return this.mutate(async (tx, emit) => this.writeFormation(tx, emit, await this.findApp(tx, ref), releaseId, processes));
  }

  async getFormation(ref: string, releaseId: string): Promise<Formation | undefined> {
    this.guard.assertOpen();
    const app = await this.findApp(this.kv, ref);
    const raw = await this.kv.get(`formations/${app.id}/${releaseId}`);
    return raw === undefined ? undefined : (JSON.parse(raw) as Formation);
  }

  async listFormations(ref?: string): Promise<Formation[]> {
    this.guard.assertOpen();
    const prefix = ref === undefined ? 'formations/' : `formations/${(await this.findApp(this.kv, ref)).id}/`;
    return (await this.kv.list(prefix)).map(([, v]) => JSON.parse(v) as Formation);
  }

  async deleteFormation(ref: string, releaseId: string): Promise<void> {
    await this.mutate(async (tx, emit) => this.removeFormation(tx, emit, (await this.findApp(tx, ref)).id, releaseId));
  }

  watchFormations(options: WatchOptions & { afterEventId?: string } = {}): AsyncIterable<FormationChange> {
    return this.watchObjects(options, 'formation', (e) =>
      e.op === 'delete' ? { type: 'delete', appId: e.appId ?? '', releaseId: e.objectId } : { type: 'put', formation: e.data as Formation },
    );
  }

  // ---- deployments ----

  async createDeployment(input: Omit<Deployment, 'id' | 'createdAt'>): Promise<Deployment> {
    return this.mutate(async (tx, emit) => {
      const app = await this.findApp(tx, input.appId);
      const deployment: Deployment = { ...input, appId: app.id, id: randomUUID(), createdAt: now() };
      tx.put(`deployments/${app.id}/${deployment.id}`, JSON.stringify(deployment));
      emit('deployment', 'create', app.id, deployment.id, deployment);
      return deployment;
    });
  }

  async stepDeployment(ref: string, id: string, step: DeployStep): Promise<Deployment> {
    for (const f of step.formations ?? []) if (f.processes) assertCounts(f.processes);
    return this.mutate(async (tx, emit) => {
      const app = await this.findApp(tx, ref);
      const raw = await tx.get(`deployments/${app.id}/${id}`);
      if (raw === undefined) throw new ObjectNotFoundError('deployment', id);
      const current = JSON.parse(raw) as Deployment;
      const from = deployStateOf(current);
      if (!DEPLOY_TRANSITIONS[from].includes(step.state)) throw new ControllerConflictError(`deployment ${id} cannot go from ${from} to ${step.state}`);
      for (const f of step.formations ?? []) {
        if (f.processes === null) await this.removeFormation(tx, emit, app.id, f.releaseId);
        else await this.writeFormation(tx, emit, app, f.releaseId, f.processes);
      }
      if (step.appReleaseId !== undefined) {
        if (!(await this.findRelease(tx, app.id, step.appReleaseId))) throw new ObjectNotFoundError('release', step.appReleaseId);
        const next: App = { ...app, releaseId: step.appReleaseId, updatedAt: now() };
        tx.put(`apps/${app.id}`, JSON.stringify(next));
        emit('app', 'update', app.id, app.id, next);
      }
      const terminal = DEPLOY_TRANSITIONS[step.state].length === 0;
      const next: Deployment = {
        ...current,
        state: step.state,
        status: DEPLOY_STATE_STATUS[step.state],
        ...(step.error !== undefined ? { error: step.error } : {}),
        ...(terminal ? { finishedAt: now() } : {}),
      };
      tx.put(`deployments/${app.id}/${id}`, JSON.stringify(next));
      emit('deployment', 'update', app.id, id, next);
      return next;
    });
  }

  async getDeployment(ref: string, id: string): Promise<Deployment> {
    this.guard.assertOpen();
    const app = await this.findApp(this.kv, ref);
    const raw = await this.kv.get(`deployments/${app.id}/${id}`);
    if (raw === undefined) throw new ObjectNotFoundError('deployment', id);
    return JSON.parse(raw) as Deployment;
  }

  async listDeployments(ref: string): Promise<Deployment[]> {
    this.guard.assertOpen();
    const app = await this.findApp(this.kv, ref);
    return (await this.kv.list(`deployments/${app.id}/`)).map(([, v]) => JSON.parse(v) as Deployment).sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }

  // ---- routes ----

  async createRoute(ref: string, input: CreateRouteInput): Promise<Route> {
    return this.mutate(async (tx, emit) => {
      const app = await this.findApp(tx, ref);
      const base = { appId: app.id, service: input.service, createdAt: now() };
      const route: Route =
        input.type === 'http'
          ? {
              ...base,
              id: `http/${randomUUID()}`,
              type: 'http',
              domain: input.domain,
              path: input.path ?? '/',
              sticky: input.sticky ?? false,
              ...(input.tls ? { tls: { ...input.tls } } : {}),
              ...(input.acme ? { acme: { status: 'pending' as const, updatedAt: now() } } : {}),
              ...(input.timeouts ? { timeouts: { ...input.timeouts } } : {}),
              ...(input.healthCheck ? { healthCheck: { ...input.healthCheck } } : {}),
              ...(input.redirectHttps ? { redirectHttps: true } : {}),
            }
          : { ...base, id: `tcp/${randomUUID()}`, type: 'tcp', port: input.port };
      const index = routeIndexKey(route);
      const holder = await tx.get(index);
      if (holder !== undefined) {
        const what = route.type === 'http' ? `an HTTP route for ${route.domain}${route.path}` : `a TCP route on port ${route.port}`;
        throw new ControllerConflictError(`${what} already exists (${holder.split(' ')[1]})`, { field: route.type === 'http' ? 'domain' : 'port' });
      }
      tx.put(index, `${app.id} ${route.id}`);
      tx.put(`routes/${app.id}/${route.id}`, JSON.stringify(route));
      emit('route', 'create', app.id, route.id, route);
      return route;
    });
  }

  async getRoute(ref: string, id: string): Promise<Route> {
    this.guard.assertOpen();
    const app = await this.findApp(this.kv, ref);
    const raw = await this.kv.get(`routes/${app.id}/${id}`);
    if (raw === undefined) throw new ObjectNotFoundError('route', id);
    return JSON.parse(raw) as Route;
  }

  async listRoutes(ref?: string): Promise<Route[]> {
    this.guard.assertOpen();
    const prefix = ref === undefined ? 'routes/' : `routes/${(await this.findApp(this.kv, ref)).id}/`;
    return (await this.kv.list(prefix)).map(([, v]) => JSON.parse(v) as Route).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  async updateRoute(ref: string, id: string, change: UpdateHttpRouteInput): Promise<Route> {
    return this.mutate(async (tx, emit) => {
      const app = await this.findApp(tx, ref);
      const raw = await tx.get(`routes/${app.id}/${id}`);
      const route = raw === undefined ? undefined : (JSON.parse(raw) as Route);
      if (route?.type !== 'http') throw new ObjectNotFoundError('route', id);
      const next: HttpRoute = { ...route };
      if (change.service !== undefined) next.service = change.service;
      if (change.sticky !== undefined) next.sticky = change.sticky;
      if (change.redirectHttps !== undefined) next.redirectHttps = change.redirectHttps;
      if (change.tls === null) delete next.tls;
      else if (change.tls) {
        // An uploaded certificate replaces the automatic one.
        next.tls = { ...change.tls };
        delete next.acme;
      }
      if (change.acme === true && !next.acme) {
        delete next.tls;
        next.acme = { status: 'pending', updatedAt: now() };
      } else if (change.acme === false && next.acme) {
        delete next.tls;
        delete next.acme;
      }
      if (change.timeouts === null) delete next.timeouts;
      else if (change.timeouts) next.timeouts = { ...change.timeouts };
      if (change.healthCheck === null) delete next.healthCheck;
      else if (change.healthCheck) next.healthCheck = { ...change.healthCheck };
      tx.put(`routes/${app.id}/${id}`, JSON.stringify(next));
      emit('route', 'update', app.id, id, next);
      return next;
    });
  }

  async deleteRoute(ref: string, id: string): Promise<Route> {
    return this.mutate(async (tx, emit) => {
      const app = await this.findApp(tx, ref);
      const raw = await tx.get(`routes/${app.id}/${id}`);
      if (raw === undefined) throw new ObjectNotFoundError('route', id);
      const route = JSON.parse(raw) as Route;
      tx.delete(`routes/${app.id}/${id}`);
      tx.delete(routeIndexKey(route));
      emit('route', 'delete', app.id, id, route);
      return route;
    });
  }

  async recordAcme(ref: string, id: string, update: { acme: HttpRouteAcme; tls?: HttpRouteTls }): Promise<HttpRoute | undefined> {
    return this.mutate(async (tx, emit) => {
      const app = await this.findApp(tx, ref);
      const raw = await tx.get(`routes/${app.id}/${id}`);
      const route = raw === undefined ? undefined : (JSON.parse(raw) as Route);
      if (route?.type !== 'http' || !route.acme) return undefined;
      const next: HttpRoute = { ...route, acme: { ...update.acme } };
      if (update.tls) next.tls = { ...update.tls };
      tx.put(`routes/${app.id}/${id}`, JSON.stringify(next));
      emit('route', 'update', app.id, id, next);
      return next;
    });
  }

  async acmeAccountKey(candidate: string): Promise<string> {
    return this.mutate(async (tx) => {
      const held = await tx.get(ACME_ACCOUNT_KEY);
      if (held !== undefined) return held;
      tx.put(ACME_ACCOUNT_KEY, candidate);
      return candidate;
    });
  }

  watchRoutes(options: WatchOptions & { afterEventId?: string } = {}): AsyncIterable<RouteChange> {
    return this.watchObjects(options, 'route', (e) => (e.op === 'delete' ? { type: 'delete', id: e.objectId, appId: e.appId ?? '' } : { type: 'put', route: e.data as Route }));
  }

  // ---- keys ----

  async addKey(keyLine: string): Promise<Key> {
    const parsed = parsePublicKey(keyLine);
    return this.mutate(async (tx, emit) => {
      if ((await tx.get(`keys/${parsed.id}`)) !== undefined) throw new ControllerConflictError(`key ${parsed.fingerprint} is already added`, { field: 'key' });
      const key: Key = { id: parsed.id, fingerprint: parsed.fingerprint, key: parsed.line, comment: parsed.comment, createdAt: now() };
      tx.put(`keys/${key.id}`, JSON.stringify(key));
      emit('key', 'create', null, key.id, key);
      return key;
    });
  }

  async listKeys(): Promise<Key[]> {
    this.guard.assertOpen();
    return (await this.kv.list('keys/')).map(([, v]) => JSON.parse(v) as Key).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  async removeKey(ref: string): Promise<Key> {
    return this.mutate(async (tx, emit) => {
      let raw = /^[0-9a-f]{64}$/.test(ref) ? await tx.get(`keys/${ref}`) : undefined;
      if (raw === undefined) raw = (await tx.list('keys/')).map(([, v]) => v).find((v) => (JSON.parse(v) as Key).fingerprint === ref);
      if (raw === undefined) throw new ObjectNotFoundError('key', ref);
      const key = JSON.parse(raw) as Key;
      tx.delete(`keys/${key.id}`);
      emit('key', 'delete', null, key.id, key);
      return key;
    });
  }

  // ---- events ----

  async appendEvent(event: Omit<ControllerEvent, 'id' | 'createdAt'>): Promise<ControllerEvent> {
    let out: ControllerEvent | undefined;
    await this.mutate(async (_tx, emit) => emit(event.object, event.op, event.appId, event.objectId, event.data), (e) => (out = e[0]));
    return out as ControllerEvent;
  }

  async listEvents(options: { afterId?: string; appId?: string; limit?: number } = {}): Promise<ControllerEvent[]> {
    this.guard.assertOpen();
    const after = Number(options.afterId ?? '0');
    const events = (await this.kv.list('events/')).map(([, v]) => JSON.parse(v) as ControllerEvent).filter((e) => Number(e.id) > after && (options.appId === undefined || e.appId === options.appId));
    return options.limit === undefined ? events : events.slice(0, options.limit);
  }

  watchEvents(options: WatchOptions & { afterId?: string } = {}): AsyncIterable<ControllerEvent> {
    this.guard.assertOpen();
    let unwatch: (() => Promise<void>) | undefined;
    let stopped = false;
    const queue: AsyncQueue<ControllerEvent> = new AsyncQueue(() => {
      stopped = true;
      this.queues.delete(queue);
      options.signal?.removeEventListener('abort', onAbort);
      void unwatch?.().catch(() => undefined);
    });
    const onAbort = () => queue.end();
    if (options.signal?.aborted) queue.end();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    this.queues.add(queue);
    let last = Number.NaN;
    let pending: ControllerEvent[] | undefined = [];
    const deliver = (e: ControllerEvent) => {
      if (Number(e.id) <= last) return;
      last = Number(e.id);
      queue.push(e);
    };
    void (async () => {
      unwatch = await this.kv.watch('events/', (_k, v) => {
        const e = JSON.parse(v) as ControllerEvent;
        if (pending) pending.push(e);
        else deliver(e);
      });
      if (stopped) return void (await unwatch());
      if (options.afterId === undefined) {
        last = Number((await this.kv.get(SEQ)) ?? '0');
      } else {
        last = Number(options.afterId) || 0;
        for (const e of await this.listEvents({ afterId: String(last) })) deliver(e);
      }
      const buffered = pending ?? [];
      pending = undefined;
      for (const e of buffered.sort((a, b) => Number(a.id) - Number(b.id))) deliver(e);
    })().catch((err: unknown) => queue.end(err));
    return queue;
  }

  // ---- components' state ----

  async listState(prefix: string): Promise<Array<[string, string]>> {
    this.guard.assertOpen();
    return (await this.kv.list(STATE + prefix)).map(([k, v]) => [k.slice(STATE.length), v]);
  }

  async putState(key: string, value: string): Promise<void> {
    this.guard.assertOpen();
    await this.kv.txn(async (tx) => {
      await tx.get(STATE + key); // a writing etcd transaction compares at least one key
      tx.put(STATE + key, value);
    });
  }

  async deleteState(key: string): Promise<void> {
    this.guard.assertOpen();
    await this.kv.txn(async (tx) => {
      await tx.get(STATE + key);
      tx.delete(STATE + key);
    });
  }

  async dumpEntries(): Promise<Array<[string, string]>> {
    this.guard.assertOpen();
    // A restored cluster starts afresh: a crash loop of the old one is no reason to hold its apps back.
    return (await this.kv.list('')).filter(([k]) => !k.startsWith(STATE));
  }

  async restoreEntries(entries: Array<[string, string]>): Promise<void> {
    this.guard.assertOpen();
    if ((await this.kv.list('apps/')).length > 0) throw new ControllerConflictError('the store holds apps already: restore a backup into a fresh cluster (a new data dir, or an empty etcd prefix)');
    const apps = entries.filter(([k]) => k.startsWith('apps/'));
    const rest = entries.filter(([k]) => !k.startsWith('apps/'));
    // Batches well under what etcd takes in one transaction (128 operations, 1.5 MiB).
    for (let i = 0; i < rest.length + apps.length; ) {
      const batch: Array<[string, string]> = [];
      let bytes = 0;
      for (; i < rest.length + apps.length && batch.length < 100 && bytes < 512 * 1024; i++) {
        const entry = (i < rest.length ? rest[i] : apps[i - rest.length]) as [string, string];
        batch.push(entry);
        bytes += entry[0].length + entry[1].length;
      }
      await this.kv.txn(async (tx) => {
        await tx.get(SEQ); // a writing etcd transaction compares at least one key
        for (const [k, v] of batch) tx.put(k, v);
      });
    }
  }

  async close(): Promise<void> {
    await this.guard.close(async () => {
      for (const q of [...this.queues]) q.end();
      await this.kv.close();
    });
  }

  // ---- internals ----

  private watchObjects<T>(options: WatchOptions & { afterEventId?: string }, object: EventObject, map: (e: ControllerEvent) => T): AsyncIterable<T> {
    const events = this.watchEvents({ ...(options.signal ? { signal: options.signal } : {}), ...(options.afterEventId !== undefined ? { afterId: options.afterEventId } : {}) });
    return (async function* () {
      for await (const e of events) if (e.object === object) yield map(e);
    })();
  }

  private async findApp(reader: Pick<KvTxn, 'get'>, ref: string): Promise<App> {
    let raw = await reader.get(`apps/${ref}`);
    if (raw === undefined) {
      const id = await reader.get(`app-names/${ref}`);
      if (id !== undefined) raw = await reader.get(`apps/${id}`);
    }
    if (raw === undefined) throw new AppNotFoundError(ref);
    return JSON.parse(raw) as App;
  }

  private async findRelease(reader: Pick<KvTxn, 'get' | 'list'>, appId: string, ref: string): Promise<Release | undefined> {
    const m = /^v?(\d+)$/.exec(ref);
    if (m) {
      const raw = await reader.get(`releases/${appId}/${pad(Number(m[1]), 10)}`);
      return raw === undefined ? undefined : (JSON.parse(raw) as Release);
    }
    return (await reader.list(`releases/${appId}/`)).map(([, v]) => JSON.parse(v) as Release).find((r) => r.id === ref);
  }

  private async writeFormation(tx: KvTxn, emit: Emit, app: App, releaseId: string, processes: Record<string, number>): Promise<Formation> {
    const release = await this.findRelease(tx, app.id, releaseId);
    if (!release) throw new ObjectNotFoundError('release', releaseId);
    const counts = Object.fromEntries(Object.entries(processes).filter(([, n]) => n > 0));
    const formation: Formation = { appId: app.id, releaseId: release.id, processes: counts, updatedAt: now() };
    tx.put(`formations/${app.id}/${release.id}`, JSON.stringify(formation));
    emit('formation', 'update', app.id, release.id, formation);
    return formation;
  }

  private async removeFormation(tx: KvTxn, emit: Emit, appId: string, releaseId: string): Promise<void> {
    const key = `formations/${appId}/${releaseId}`;
    if ((await tx.get(key)) === undefined) return;
    tx.delete(key);
    emit('formation', 'delete', appId, releaseId, { appId, releaseId });
  }

  /** One transaction: read the event sequence, run `fn`, append its events, commit. */
  private async mutate<T>(fn: (tx: KvTxn, emit: Emit) => Promise<T>, onEvents?: (events: ControllerEvent[]) => void): Promise<T> {
    this.guard.assertOpen();
    let events: ControllerEvent[] = [];
    const result = await this.kv.txn(async (tx) => {
      events = [];
      const seq = Number((await tx.get(SEQ)) ?? '0');
      const emit: Emit = (object, op, appId, objectId, data) => {
        events.push({ id: String(seq + events.length + 1), object, op, appId, objectId, data, createdAt: now() });
      };
      const out = await fn(tx, emit);
      for (const e of events) {
        tx.put(eventKey(Number(e.id)), JSON.stringify(e));
        if (Number(e.id) > this.eventRetention) tx.delete(eventKey(Number(e.id) - this.eventRetention));
      }
      if (events.length > 0) tx.put(SEQ, String(seq + events.length));
      return out;
    });
    onEvents?.(events);
    return result;
  }
}

function assertCounts(processes: Record<string, number>): void {
  for (const [type, count] of Object.entries(processes)) {
    if (!Number.isInteger(count) || count < 0) throw new ControllerInputError(`processes.${type}`, `count of ${type} must be a non-negative integer`);
  }
}

function routeIndexKey(route: Route): string {
  return route.type === 'http' ? `route-http/${encodeURIComponent(route.domain)}${encodeURIComponent(route.path)}` : `route-tcp/${route.port}`;
}
