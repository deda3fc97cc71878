import { randomUUID } from 'node:crypto';
import { CloseGuard } from '../common/lifecycle.js';
import { ControllerConflictError, ControllerInputError, NameTakenError, ObjectNotFoundError } from './errors.js';
import type { Kv, KvTxn } from './kv.js';
import { applyDeployStep } from './kv-deployments.js';
import { KvEventLog, type Emit } from './kv-event-log.js';
import { removeFormation, writeFormation } from './kv-formations.js';
import { assertCounts, findApp, findRelease, now, pad, routeIndexKey } from './kv-records.js';
import { insertRoute, removeRoute, updateHttpRoute, writeAcme } from './kv-routes.js';
import { deleteState, dumpEntries, listState, putState, restoreEntries } from './kv-state.js';
import type { DeployStep, FormationChange, NewRelease, RouteChange, Store, WatchOptions } from './store.js';
import type { App, Artifact, ControllerEvent, CreateAppInput, CreateArtifactInput, Deployment, EventObject, Formation, Key, Release, UpdateAppInput } from './types.js';
import type { CreateRouteInput, HttpRoute, HttpRouteAcme, HttpRouteTls, Route, UpdateHttpRouteInput } from './route-types.js';
import { parsePublicKey, validateAppName } from './validate.js';

/** The ACME account's private key (PEM): written once, never in an event or an API answer. */
const ACME_ACCOUNT_KEY = 'acme/account-key';

export interface KvStoreOptions {
  /** Events kept for replay (`Last-Event-Id`); older ones are deleted as new ones are written. Default 10 000 events. */
  eventRetention?: number;
}

export const KV_STORE_DEFAULTS = Object.freeze({ eventRetention: 10_000 });

/**
 * The {@link Store} logic over any {@link Kv}: name uniqueness, release numbering, cascades and
 * the event log, each mutation one transaction.
 */
export class KvStore implements Store {
  private readonly guard: CloseGuard;
  private readonly log: KvEventLog;

  constructor(
    private readonly kv: Kv,
    what = 'controller store',
    options: KvStoreOptions = {},
  ) {
    this.guard = new CloseGuard(what);
    this.log = new KvEventLog(kv, options.eventRetention ?? KV_STORE_DEFAULTS.eventRetention);
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
    return findApp(this.kv, app);
  }

  async listApps(): Promise<App[]> {
    this.guard.assertOpen();
    const apps = (await this.kv.list('apps/')).map(([, v]) => JSON.parse(v) as App);
    return apps.sort((a, b) => a.name.localeCompare(b.name));
  }

  async updateApp(ref: string, patch: UpdateAppInput): Promise<App> {
    return this.mutate(async (tx, emit) => {
      const app = await findApp(tx, ref);
      const next: App = { ...app, meta: patch.meta ? { ...patch.meta } : app.meta, strategy: patch.strategy ?? app.strategy, updatedAt: now() };
      tx.put(`apps/${app.id}`, JSON.stringify(next));
      emit('app', 'update', app.id, app.id, next);
      return next;
    });
  }

  async setAppRelease(ref: string, releaseId: string | null): Promise<App> {
    return this.mutate(async (tx, emit) => {
      const app = await findApp(tx, ref);
      if (releaseId !== null && !(await findRelease(tx, app.id, releaseId))) throw new ObjectNotFoundError('release', releaseId);
      const next: App = { ...app, releaseId, updatedAt: now() };
      tx.put(`apps/${app.id}`, JSON.stringify(next));
      emit('app', 'update', app.id, app.id, next);
      return next;
    });
  }

  async setAppScale(ref: string, scale: Record<string, number>): Promise<App> {
    assertCounts(scale);
    return this.mutate(async (tx, emit) => {
      const app = await findApp(tx, ref);
      const next: App = { ...app, scale: { ...scale }, updatedAt: now() };
      tx.put(`apps/${app.id}`, JSON.stringify(next));
      emit('app', 'update', app.id, app.id, next);
      return next;
    });
  }

  async deleteApp(ref: string): Promise<App> {
    return this.mutate(async (tx, emit) => {
      const app = await findApp(tx, ref);
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
      const app = await findApp(tx, ref);
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
    const app = await findApp(this.kv, ref);
    const found = await findRelease(this.kv, app.id, release);
    if (!found) throw new ObjectNotFoundError('release', release);
    return found;
  }

  async listReleases(ref: string): Promise<Release[]> {
    this.guard.assertOpen();
    const app = await findApp(this.kv, ref);
    return (await this.kv.list(`releases/${app.id}/`)).map(([, v]) => JSON.parse(v) as Release);
  }

  // ---- formations ----

  async putFormation(ref: string, releaseId: string, processes: Record<string, number>): Promise<Formation> {
    assertCounts(processes);
    return this.mutate(async (tx, emit) => writeFormation(tx, emit, await findApp(tx, ref), releaseId, processes));
  }

  async getFormation(ref: string, releaseId: string): Promise<Formation | undefined> {
    this.guard.assertOpen();
    const app = await findApp(this.kv, ref);
    const raw = await this.kv.get(`formations/${app.id}/${releaseId}`);
    return raw === undefined ? undefined : (JSON.parse(raw) as Formation);
  }

  async listFormations(ref?: string): Promise<Formation[]> {
    this.guard.assertOpen();
    const prefix = ref === undefined ? 'formations/' : `formations/${(await findApp(this.kv, ref)).id}/`;
    return (await this.kv.list(prefix)).map(([, v]) => JSON.parse(v) as Formation);
  }

  async deleteFormation(ref: string, releaseId: string): Promise<void> {
    await this.mutate(async (tx, emit) => removeFormation(tx, emit, (await findApp(tx, ref)).id, releaseId));
  }

  watchFormations(options: WatchOptions & { afterEventId?: string } = {}): AsyncIterable<FormationChange> {
    return this.watchObjects(options, 'formation', (e) =>
      e.op === 'delete' ? { type: 'delete', appId: e.appId ?? '', releaseId: e.objectId } : { type: 'put', formation: e.data as Formation },
    );
  }

  // ---- deployments ----

  async createDeployment(input: Omit<Deployment, 'id' | 'createdAt'>): Promise<Deployment> {
    return this.mutate(async (tx, emit) => {
      const app = await findApp(tx, input.appId);
      const deployment: Deployment = { ...input, appId: app.id, id: randomUUID(), createdAt: now() };
      tx.put(`deployments/${app.id}/${deployment.id}`, JSON.stringify(deployment));
      emit('deployment', 'create', app.id, deployment.id, deployment);
      return deployment;
    });
  }

  async stepDeployment(ref: string, id: string, step: DeployStep): Promise<Deployment> {
    for (const f of step.formations ?? []) if (f.processes) assertCounts(f.processes);
    return this.mutate((tx, emit) => applyDeployStep(tx, emit, ref, id, step));
  }

  async getDeployment(ref: string, id: string): Promise<Deployment> {
    this.guard.assertOpen();
    const app = await findApp(this.kv, ref);
    const raw = await this.kv.get(`deployments/${app.id}/${id}`);
    if (raw === undefined) throw new ObjectNotFoundError('deployment', id);
    return JSON.parse(raw) as Deployment;
  }

  async listDeployments(ref: string): Promise<Deployment[]> {
    this.guard.assertOpen();
    const app = await findApp(this.kv, ref);
    return (await this.kv.list(`deployments/${app.id}/`)).map(([, v]) => JSON.parse(v) as Deployment).sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }

  // ---- routes ----

  async createRoute(ref: string, input: CreateRouteInput): Promise<Route> {
    return this.mutate((tx, emit) => insertRoute(tx, emit, ref, input));
  }

  async getRoute(ref: string, id: string): Promise<Route> {
    this.guard.assertOpen();
    const app = await findApp(this.kv, ref);
    const raw = await this.kv.get(`routes/${app.id}/${id}`);
    if (raw === undefined) throw new ObjectNotFoundError('route', id);
    return JSON.parse(raw) as Route;
  }

  async listRoutes(ref?: string): Promise<Route[]> {
    this.guard.assertOpen();
    const prefix = ref === undefined ? 'routes/' : `routes/${(await findApp(this.kv, ref)).id}/`;
    return (await this.kv.list(prefix)).map(([, v]) => JSON.parse(v) as Route).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  async updateRoute(ref: string, id: string, change: UpdateHttpRouteInput): Promise<Route> {
    return this.mutate((tx, emit) => updateHttpRoute(tx, emit, ref, id, change));
  }

  async deleteRoute(ref: string, id: string): Promise<Route> {
    return this.mutate((tx, emit) => removeRoute(tx, emit, ref, id));
  }

  async recordAcme(ref: string, id: string, update: { acme: HttpRouteAcme; tls?: HttpRouteTls }): Promise<HttpRoute | undefined> {
    return this.mutate((tx, emit) => writeAcme(tx, emit, ref, id, update));
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
    return this.log.listEvents(options);
  }

  watchEvents(options: WatchOptions & { afterId?: string } = {}): AsyncIterable<ControllerEvent> {
    this.guard.assertOpen();
    return this.log.watchEvents(options);
  }

  // ---- components' state ----

  async listState(prefix: string): Promise<Array<[string, string]>> {
    this.guard.assertOpen();
    return listState(this.kv, prefix);
  }

  async putState(key: string, value: string): Promise<void> {
    this.guard.assertOpen();
    await putState(this.kv, key, value);
  }

  async deleteState(key: string): Promise<void> {
    this.guard.assertOpen();
    await deleteState(this.kv, key);
  }

  async dumpEntries(): Promise<Array<[string, string]>> {
    this.guard.assertOpen();
    return dumpEntries(this.kv);
  }

  async restoreEntries(entries: Array<[string, string]>): Promise<void> {
    this.guard.assertOpen();
    await restoreEntries(this.kv, entries);
  }

  async close(): Promise<void> {
    await this.guard.close(async () => {
      this.log.endWatches();
      await this.kv.close();
    });
  }

  // ---- internals ----

  private watchObjects<T>(options: WatchOptions & { afterEventId?: string }, object: EventObject, map: (e: ControllerEvent) => T): AsyncIterable<T> {
    this.guard.assertOpen();
    return this.log.watchObjects(options, object, map);
  }

  /** One transaction: read the event sequence, run `fn`, append its events, commit. */
  private async mutate<T>(fn: (tx: KvTxn, emit: Emit) => Promise<T>, onEvents?: (events: ControllerEvent[]) => void): Promise<T> {
    this.guard.assertOpen();
    return this.log.mutate(fn, onEvents);
  }
}
