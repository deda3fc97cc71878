import { ControllerInputError, ProcessTypeNotFoundError } from '../errors.js';
import { appScale } from '../scale.js';
import * as S from '../schemas.js';
import type { App, Formation, Release } from '../types.js';
import type { ApiDeps, ApiServer, Req } from './deps.js';

/** `/formations` and `/apps/:app/scale`: the process counts of each release. */
export function registerFormationRoutes(r: ApiServer, deps: ApiDeps): void {
  const { store, app } = deps;
  r.get('/formations', async () => store.listFormations());
  r.get('/apps/:app/formations', async (req: Req) => store.listFormations(req.params.app));
  r.get('/apps/:app/formations/:release', async (req: Req<{ app: string; release: string }>) => {
    const a = await app(req.params.app);
    const release = await store.getRelease(a.id, req.params.release);
    return (await store.getFormation(a.id, release.id)) ?? { appId: a.id, releaseId: release.id, processes: {}, updatedAt: release.createdAt };
  });
  r.put('/apps/:app/formations/:release', { schema: { body: S.formationBody } }, async (req: Req<{ app: string; release: string }, { processes: Record<string, number> }>) => {
    const a = await app(req.params.app);
    const release = await store.getRelease(a.id, req.params.release);
    return scale(deps, a, release, req.body.processes);
  });
  r.put('/apps/:app/scale', { schema: { body: S.formationBody } }, async (req: Req<{ app: string }, { processes: Record<string, number> }>) => {
    const a = await app(req.params.app);
    if (a.releaseId === null) throw new ControllerInputError('app', `app ${a.name} has no release to scale yet: deploy first`);
    return scale(deps, a, await store.getRelease(a.id, a.releaseId), req.body.processes);
  });
}

/** Set counts of `release`; for the running release they are also the app's scale, kept across releases (scale.ts). */
async function scale({ store, maxScale }: ApiDeps, a: App, release: Release, processes: Record<string, number>): Promise<Formation> {
  for (const [type, n] of Object.entries(processes)) {
    if (n > maxScale) throw new ControllerInputError(`processes.${type}`, `${type}=${n} is over the limit of ${maxScale} jobs per process type`);
    if (!Object.hasOwn(release.processes, type)) throw new ProcessTypeNotFoundError({ app: a.name, version: release.version, type, types: Object.keys(release.processes) });
  }
  const existing = await store.getFormation(a.id, release.id);
  const formation = await store.putFormation(a.id, release.id, { ...existing?.processes, ...processes });
  if (release.id === a.releaseId) await store.setAppScale(a.id, { ...appScale(a, existing), ...processes });
  return formation;
}
