/** How {@link KvStore} lays out and reads its records: apps by id or name, releases by id or version, route index keys. */
import { AppNotFoundError, ControllerInputError } from './errors.js';
import type { KvTxn } from './kv.js';
import type { App, Release } from './types.js';
import type { Route } from './route-types.js';

export const pad = (n: number, width: number) => String(n).padStart(width, '0');
export const now = () => new Date().toISOString();

export async function findApp(reader: Pick<KvTxn, 'get'>, ref: string): Promise<App> {
  let raw = await reader.get(`apps/${ref}`);
  if (raw === undefined) {
    const id = await reader.get(`app-names/${ref}`);
    if (id !== undefined) raw = await reader.get(`apps/${id}`);
  }
  if (raw === undefined) throw new AppNotFoundError(ref);
  return JSON.parse(raw) as App;
}

export async function findRelease(reader: Pick<KvTxn, 'get' | 'list'>, appId: string, ref: string): Promise<Release | undefined> {
  const m = /^v?(\d+)$/.exec(ref);
  if (m) {
    const raw = await reader.get(`releases/${appId}/${pad(Number(m[1]), 10)}`);
    return raw === undefined ? undefined : (JSON.parse(raw) as Release);
  }
  return (await reader.list(`releases/${appId}/`)).map(([, v]) => JSON.parse(v) as Release).find((r) => r.id === ref);
}

export function assertCounts(processes: Record<string, number>): void {
  for (const [type, count] of Object.entries(processes)) {
    if (!Number.isInteger(count) || count < 0) throw new ControllerInputError(`processes.${type}`, `count of ${type} must be a non-negative integer`);
  }
}

export function routeIndexKey(route: Route): string {
  return route.type === 'http' ? `route-http/${encodeURIComponent(route.domain)}${encodeURIComponent(route.path)}` : `route-tcp/${route.port}`;
}
