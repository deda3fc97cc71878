/** The route transactions of {@link KvStore}: create (with its unique index), update, delete, and the ACME status. */
import { randomUUID } from 'node:crypto';
import { ControllerConflictError, ObjectNotFoundError } from './errors.js';
import type { KvTxn } from './kv.js';
import type { Emit } from './kv-event-log.js';
import { findApp, now, routeIndexKey } from './kv-records.js';
import type { CreateRouteInput, HttpRoute, HttpRouteAcme, HttpRouteTls, Route, UpdateHttpRouteInput } from './route-types.js';

export async function insertRoute(tx: KvTxn, emit: Emit, ref: string, input: CreateRouteInput): Promise<Route> {
  const app = await findApp(tx, ref);
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
}

export async function updateHttpRoute(tx: KvTxn, emit: Emit, ref: string, id: string, change: UpdateHttpRouteInput): Promise<Route> {
  const app = await findApp(tx, ref);
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
}

export async function removeRoute(tx: KvTxn, emit: Emit, ref: string, id: string): Promise<Route> {
  const app = await findApp(tx, ref);
  const raw = await tx.get(`routes/${app.id}/${id}`);
  if (raw === undefined) throw new ObjectNotFoundError('route', id);
  const route = JSON.parse(raw) as Route;
  tx.delete(`routes/${app.id}/${id}`);
  tx.delete(routeIndexKey(route));
  emit('route', 'delete', app.id, id, route);
  return route;
}

export async function writeAcme(tx: KvTxn, emit: Emit, ref: string, id: string, update: { acme: HttpRouteAcme; tls?: HttpRouteTls }): Promise<HttpRoute | undefined> {
  const app = await findApp(tx, ref);
  const raw = await tx.get(`routes/${app.id}/${id}`);
  const route = raw === undefined ? undefined : (JSON.parse(raw) as Route);
  if (route?.type !== 'http' || !route.acme) return undefined;
  const next: HttpRoute = { ...route, acme: { ...update.acme } };
  if (update.tls) next.tls = { ...update.tls };
  tx.put(`routes/${app.id}/${id}`, JSON.stringify(next));
  emit('route', 'update', app.id, id, next);
  return next;
}
