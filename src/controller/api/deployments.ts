import type { DeploymentManager } from '../deployments.js';
import { ControllerInputError } from '../errors.js';
import * as S from '../schemas.js';
import { lastDeploymentOf } from '../last-deployments.js';
import type { App, Release, ReleaseChange, RollbackChange } from '../types.js';
import type { ApiDeps, ApiServer, Req } from './deps.js';

/** Start deploying a release just made (env change, rollback): the change a client is answered with. */
export async function deployRelease(deployments: DeploymentManager, a: App, release: Release): Promise<ReleaseChange> {
  return { release, deployment: await deployments.start(a, release) };
}

/** `/apps/:app/deploy`, `/apps/:app/deployments` and `/apps/:app/rollback`. */
export function registerDeploymentRoutes(r: ApiServer, { store, app, deployments }: ApiDeps): void {
  r.post('/apps/:app/deploy', { schema: { body: S.deployBody } }, async (req: Req<{ app: string }, { release: string; strategy?: App['strategy'] }>, reply) => {
    const a = await app(req.params.app);
    const release = await store.getRelease(a.id, req.body.release);
    reply.status(201);
    return deployments.start(a, release, req.body.strategy);
  });
  r.get('/apps/:app/deployments', async (req: Req) => store.listDeployments(req.params.app));
  r.get('/apps/:app/deployments/:id', async (req: Req<{ app: string; id: string }>) => store.getDeployment(req.params.app, req.params.id));

  r.post('/apps/:app/rollback', { schema: { body: S.rollbackBody } }, async (req: Req<{ app: string }, { release?: string }>, reply) => {
    const a = await app(req.params.app);
    let target: Release;
    if (req.body.release !== undefined) {
      target = await store.getRelease(a.id, req.body.release).catch(() => { throw new ControllerInputError('release', `app ${a.name} has no release ${JSON.stringify(req.body.release)}`); });
    } else {
      const [all, deployed] = await Promise.all([store.listReleases(a.id), store.listDeployments(a.id)]);
      const current = all.find((x) => x.id === a.releaseId);
      // A release whose last deployment failed never served (flynn releases shows it `failed`): rolling back to it would deploy the broken code again.
      const failed = new Set([...lastDeploymentOf(deployed).values()].filter((d) => d.status === 'failed').map((d) => d.newReleaseId));
      const earlier = all.filter((x) => (current === undefined || x.version < current.version) && !failed.has(x.id));
      const prev = earlier[earlier.length - 1];
      if (!prev) throw new ControllerInputError('release', `app ${a.name} has no earlier release to roll back to${failed.size > 0 ? ' (the ones that failed to deploy are skipped: name one to deploy it again)' : ''}`);
      target = prev;
    }
    const release = await store.createRelease(a.id, { artifactId: target.artifactId, env: target.env, processes: target.processes });
    reply.status(201);
    const change: RollbackChange = { ...(await deployRelease(deployments, a, release)), target };
    return change;
  });
}
