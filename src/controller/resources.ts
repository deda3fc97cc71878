/**
 * Providers and resources (Flynn's `/providers/:provider/resources`, Heroku's add-ons): a provider
 * makes a resource for an app (a database), sets the config vars that reach it on the app (a new
 * release, deployed) and removes both again. The only provider is `postgres`
 * (postgres-provider.ts).
 *
 * A resource is recorded in its app's meta (`flynn-resource.<provider>`, JSON), so it goes with
 * the app in every store and an app has at most one resource per provider. Provisions and removals
 * run one at a time.
 *
 *   POST   /providers/:provider/resources      { app }  → 201 ResourceChange
 *   GET    /providers                                   → [{ name, app }]
 *   GET    /resources                                   → Resource[]
 *   GET    /apps/:app/resources                         → Resource[]
 *   DELETE /providers/:provider/resources/:id           → ResourceChange (the env unset)
 */
import { randomUUID } from 'node:crypto';
import { deployRelease } from './api/deployments.js';
import type { ApiDeps, ApiServer } from './api/deps.js';
import { ProviderNotFoundError, ResourceExistsError, ResourceNotFoundError } from './resource-errors.js';
import { POSTGRES_PROVIDER_DEFAULTS, PostgresProvider, SYSTEM_META } from './postgres-provider.js';
import type { App, Release, ReleaseChange, Resource, ResourceChange } from './types.js';

export interface ResourceRouteOptions {
  /** Image of the postgres appliance. Default {@link POSTGRES_PROVIDER_DEFAULTS}.image. */
  postgresImage?: string;
}

const META_PREFIX = 'flynn-resource.';
const ENV_VAR = 'DATABASE_URL';

const providerParams = { type: 'object', required: ['provider'], properties: { provider: { type: 'string', minLength: 1, maxLength: 100 } } } as const;
const addBody = { type: 'object', required: ['app'], properties: { app: { type: 'string', minLength: 1, maxLength: 200 } }, additionalProperties: false } as const;

function resourcesOf(app: App): Resource[] {
  return Object.entries(app.meta)
    .filter(([k]) => k.startsWith(META_PREFIX))
    .map(([k, v]) => ({ ...(JSON.parse(v) as Omit<Resource, 'provider' | 'appId' | 'appName'>), provider: k.slice(META_PREFIX.length), appId: app.id, appName: app.name }));
}

export function registerResourceRoutes(api: ApiServer, deps: ApiDeps, options: ResourceRouteOptions = {}): void {
  const { store, deployments } = deps;
  const deploy = (app: App, release: Release) => deployRelease(deployments, app, release);
  const postgres = new PostgresProvider({ store, jobs: deps.jobs, deploy, settled: (id) => deployments.settled(id), ...(options.postgresImage ? { image: options.postgresImage } : {}) });
  const providers = new Map([[postgres.name, postgres]]);
  let queue: Promise<unknown> = Promise.resolve();
  /** One provision or removal at a time: a second add for an app sees the first one's record. */
  const serial = <T>(work: () => Promise<T>): Promise<T> => {
    const next = queue.then(work, work);
    queue = next.catch(() => {});
    return next;
  };
  const provider = (name: string) => {
    const p = providers.get(name);
    if (!p) throw new ProviderNotFoundError(name, [...providers.keys()]);
    return p;
  };
  /** A new release of the app with `change` applied to its env, deployed. */
  const setEnv = async (app: App, change: (env: Record<string, string>) => void): Promise<ReleaseChange> => {
    const current = app.releaseId === null ? undefined : await store.getRelease(app.id, app.releaseId);
    const env = { ...current?.env };
    change(env);
    deps.checkEnvSize(env, 'env');
    const release = await store.createRelease(app.id, { artifactId: current?.artifactId ?? null, env, processes: current?.processes ?? {} });
    return deploy(app, release);
  };
  const putMeta = (app: App, key: string, value: string | undefined) => {
    const meta = { ...app.meta };
    if (value === undefined) delete meta[key];
    else meta[key] = value;
    return store.updateApp(app.id, { meta });
  };

  api.get('/providers', async () => [...providers.values()].map((p) => ({ name: p.name, app: POSTGRES_PROVIDER_DEFAULTS.appName })));

  api.post<{ Params: { provider: string }; Body: { app: string } }>('/providers/:provider/resources', { schema: { params: providerParams, body: addBody } }, async (req, reply) => {
    const p = provider(req.params.provider);
    const change = await serial(async (): Promise<ResourceChange> => {
      const app = await store.getApp(req.body.app);
      if (app.meta[SYSTEM_META] !== undefined) throw new ResourceExistsError(`app ${app.name} is a platform app: add resources to your own apps`);
      const key = `${META_PREFIX}${p.name}`;
      if (app.meta[key] !== undefined) throw new ResourceExistsError(`app ${app.name} already has a ${p.name} resource (flynn resource remove ${p.name} -a ${app.name} first)`);
      const env = app.releaseId === null ? {} : (await store.getRelease(app.id, app.releaseId)).env;
      if (env[ENV_VAR] !== undefined) throw new ResourceExistsError(`app ${app.name} already has ${ENV_VAR} set: unset it first (flynn env unset ${ENV_VAR} -a ${app.name})`);
      const db = await p.create();
      let record: Resource | undefined;
      try {
        const stored = { id: randomUUID(), envVars: [ENV_VAR], meta: { database: db.name, role: db.name }, createdAt: new Date().toISOString() };
        const updated = await putMeta(app, key, JSON.stringify(stored));
        record = { ...stored, provider: p.name, appId: app.id, appName: app.name };
        const deployed = await setEnv(updated, (e) => (e[ENV_VAR] = db.url));
        return { resource: record, ...deployed };
      } catch (err) {
        // Nothing half-made: the database goes, and so does the record.
        await p.drop(db.name).catch(() => {});
        if (record) await store.getApp(app.id).then((a) => putMeta(a, key, undefined)).catch(() => {});
        throw err;
      }
    });
    return reply.status(201).send(change);
  });

  // A deleted app's databases go with it (Heroku destroys an app's add-ons): the store's
  // `app.delete` event still carries the app's meta. Apps deleted while no controller runs keep theirs.
  const stopWatch = new AbortController();
  api.addHook('onClose', async () => stopWatch.abort());
  void (async () => {
    for await (const e of store.watchEvents({ signal: stopWatch.signal })) {
      if (e.object !== 'app' || e.op !== 'delete') continue;
      for (const r of resourcesOf(e.data as App)) {
        const p = providers.get(r.provider);
        if (p && r.meta.database) await serial(() => p.drop(r.meta.database as string)).catch((err: unknown) => api.log.warn(`cannot drop the database of deleted app ${r.appName}: ${(err as Error).message}`));
      }
    }
  })().catch(() => {});

  api.get('/resources', async () => (await store.listApps()).flatMap(resourcesOf));
  api.get<{ Params: { app: string } }>('/apps/:app/resources', async (req) => resourcesOf(await store.getApp(req.params.app)));

  api.delete<{ Params: { provider: string; id: string } }>('/providers/:provider/resources/:id', { schema: { params: providerParams } }, async (req) => {
    const p = provider(req.params.provider);
    return serial(async (): Promise<ResourceChange> => {
      const resource = (await store.listApps()).flatMap(resourcesOf).find((r) => r.id === req.params.id && r.provider === p.name);
      if (!resource) throw new ResourceNotFoundError(req.params.id);
      const app = await store.getApp(resource.appId);
      const env = app.releaseId === null ? {} : (await store.getRelease(app.id, app.releaseId)).env;
      // The app stops getting the URL first (a new release), then the database goes.
      const deployed = resource.envVars.some((k) => env[k] !== undefined) ? await setEnv(app, (e) => resource.envVars.forEach((k) => delete e[k])) : { release: null, deployment: null };
      await p.drop(resource.meta.database as string);
      await putMeta(await store.getApp(app.id), `${META_PREFIX}${p.name}`, undefined);
      return { resource, ...deployed };
    });
  });
}
