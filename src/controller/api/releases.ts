import { ControllerInputError, ObjectNotFoundError } from '../errors.js';
import * as S from '../schemas.js';
import type { CreateArtifactInput, CreateReleaseInput } from '../types.js';
import { validateConfigKey, validateEnvKey, validateImageId, validateUrl } from '../validate.js';
import type { ApiDeps, ApiServer, Req } from './deps.js';

/** `/artifacts` and `/apps/:app/releases`: what a release runs, and the releases themselves. */
export function registerReleaseRoutes(r: ApiServer, { store, app, checkEnvSize }: ApiDeps): void {
  r.post('/artifacts', { schema: { body: S.createArtifactBody } }, async (req: Req<unknown, CreateArtifactInput>, reply) => {
    if (req.body.type === 'docker') {
      validateImageId(req.body.url);
      if (req.body.sha256 !== undefined) throw new ControllerInputError('sha256', "sha256 is a slug's digest: a docker artifact is pinned by its image id");
    } else validateUrl(req.body.url);
    if (req.body.archiveUrl !== undefined) validateUrl(req.body.archiveUrl, 'archiveUrl');
    reply.status(201);
    return store.createArtifact(req.body);
  });
  r.get('/artifacts', async () => store.listArtifacts());
  r.get('/artifacts/:id', async (req: Req<{ id: string }>) => store.getArtifact(req.params.id));

  r.post('/apps/:app/releases', { schema: { body: S.createReleaseBody } }, async (req: Req<{ app: string }, CreateReleaseInput>, reply) => {
    const a = await app(req.params.app);
    // A platform-set name is refused unless it is carried over unchanged from the current release (set before it was refused).
    const carried = a.releaseId === null ? {} : (await store.getRelease(a.id, a.releaseId)).env;
    for (const [k, v] of Object.entries(req.body.env ?? {})) {
      if (carried[k] === v) validateEnvKey(k);
      else validateConfigKey(k);
    }
    const artifactId = req.body.artifactId ?? null;
    let processes = req.body.processes;
    if (processes === undefined) {
      if (artifactId === null) processes = {};
      else processes = (await store.getArtifact(artifactId).catch(() => { throw new ControllerInputError('artifactId', `no artifact ${JSON.stringify(artifactId)}`); })).processes;
    }
    checkEnvSize(req.body.env ?? {}, 'env');
    reply.status(201);
    return store.createRelease(a.id, { artifactId, env: req.body.env ?? {}, processes });
  });
  r.get('/apps/:app/releases', async (req: Req) => store.listReleases(req.params.app));
  r.get('/apps/:app/releases/:release', async (req: Req<{ app: string; release: string }>) => store.getRelease(req.params.app, req.params.release));
  r.get('/apps/:app/release', async (req: Req) => {
    const a = await app(req.params.app);
    if (a.releaseId === null) throw new ObjectNotFoundError('current release of app', a.name);
    return store.getRelease(a.id, a.releaseId);
  });
}
