/** The formation writes of {@link KvStore}: a release's process counts put (zeros dropped) or removed, each with its event. */
import { ObjectNotFoundError } from './errors.js';
import type { KvTxn } from './kv.js';
import type { Emit } from './kv-event-log.js';
import { findRelease, now } from './kv-records.js';
import type { App, Formation } from './types.js';

export async function writeFormation(tx: KvTxn, emit: Emit, app: App, releaseId: string, processes: Record<string, number>): Promise<Formation> {
  const release = await findRelease(tx, app.id, releaseId);
  if (!release) throw new ObjectNotFoundError('release', releaseId);
  const counts = Object.fromEntries(Object.entries(processes).filter(([, n]) => n > 0));
  const formation: Formation = { appId: app.id, releaseId: release.id, processes: counts, updatedAt: now() };
  tx.put(`formations/${app.id}/${release.id}`, JSON.stringify(formation));
  emit('formation', 'update', app.id, release.id, formation);
  return formation;
}

export async function removeFormation(tx: KvTxn, emit: Emit, appId: string, releaseId: string): Promise<void> {
  const key = `formations/${appId}/${releaseId}`;
  if ((await tx.get(key)) === undefined) return;
  tx.delete(key);
  emit('formation', 'delete', appId, releaseId, { appId, releaseId });
}
