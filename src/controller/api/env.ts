import { ControllerInputError } from '../errors.js';
import * as S from '../schemas.js';
import type { EnvChange } from '../types.js';
import { validateConfigKey, validateEnvKey } from '../validate.js';
import { deployRelease } from './deployments.js';
import type { ApiDeps, ApiServer, Req } from './deps.js';

/** `/apps/:app/env`: read the running release's env; a change is a new release, deployed. */
export function registerEnvRoutes(r: ApiServer, { store, app, deployments, checkEnvSize }: ApiDeps): void {
  r.get('/apps/:app/env', async (req: Req) => {
    const a = await app(req.params.app);
    return a.releaseId === null ? {} : (await store.getRelease(a.id, a.releaseId)).env;
  });
  r.patch('/apps/:app/env', { schema: { body: S.envBody } }, async (req: Req<{ app: string }, { set?: Record<string, string>; unset?: string[] }>, reply) => {
    const a = await app(req.params.app);
    const set = req.body.set ?? {};
    const unset = req.body.unset ?? [];
    for (const k of Object.keys(set)) validateConfigKey(k, 'set');
    for (const k of unset) validateEnvKey(k, 'unset');
    if (Object.keys(set).length === 0 && unset.length === 0) throw new ControllerInputError('set', 'nothing to change: give set and/or unset');
    const current = a.releaseId === null ? undefined : await store.getRelease(a.id, a.releaseId);
    const before: Record<string, string> = current?.env ?? {};
    const unchanged = [...Object.keys(set).filter((k) => before[k] === set[k] && !unset.includes(k)), ...unset.filter((k) => before[k] === undefined && set[k] === undefined)];
    const env = { ...before, ...set };
    for (const k of unset) delete env[k];
    checkEnvSize(env, 'set');
    // A change that changes nothing is no new release (like `heroku config:unset` of a missing var).
    const same = Object.keys(env).length === Object.keys(before).length && Object.entries(env).every(([k, v]) => before[k] === v);
    if (same) {
      const answer: EnvChange = { release: current ?? null, deployment: null, unchanged };
      return answer;
    }
    const release = await store.createRelease(a.id, { artifactId: current?.artifactId ?? null, env, processes: current?.processes ?? {} });
    reply.status(201);
    const change: EnvChange = { ...(await deployRelease(deployments, a, release)), unchanged };
    return change;
  });
}
