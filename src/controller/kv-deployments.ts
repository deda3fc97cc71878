/** A deployment's step in {@link KvStore}: its allowed transition, formations and app release written in the same transaction. */
import { ControllerConflictError, ObjectNotFoundError } from './errors.js';
import type { KvTxn } from './kv.js';
import type { Emit } from './kv-event-log.js';
import { removeFormation, writeFormation } from './kv-formations.js';
import { findApp, findRelease, now } from './kv-records.js';
import type { DeployStep } from './store.js';
import { DEPLOY_STATE_STATUS, DEPLOY_TRANSITIONS, deployStateOf, type App, type Deployment } from './types.js';

export async function applyDeployStep(tx: KvTxn, emit: Emit, ref: string, id: string, step: DeployStep): Promise<Deployment> {
  const app = await findApp(tx, ref);
  const raw = await tx.get(`deployments/${app.id}/${id}`);
  if (raw === undefined) throw new ObjectNotFoundError('deployment', id);
  const current = JSON.parse(raw) as Deployment;
  const from = deployStateOf(current);
  if (!DEPLOY_TRANSITIONS[from].includes(step.state)) throw new ControllerConflictError(`deployment ${id} cannot go from ${from} to ${step.state}`);
  for (const f of step.formations ?? []) {
    if (f.processes === null) await removeFormation(tx, emit, app.id, f.releaseId);
    else await writeFormation(tx, emit, app, f.releaseId, f.processes);
  }
  if (step.appReleaseId !== undefined) {
    if (!(await findRelease(tx, app.id, step.appReleaseId))) throw new ObjectNotFoundError('release', step.appReleaseId);
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
}
