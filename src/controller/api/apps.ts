import * as S from '../schemas.js';
import type { CreateAppInput, UpdateAppInput } from '../types.js';
import { validateAppName } from '../validate.js';
import type { ApiDeps, ApiServer, Req } from './deps.js';

/** `/status` and `/apps`: create, list, show, update, delete. */
export function registerAppRoutes(r: ApiServer, { store, app, deployments, gitHost, onAppDeleted }: ApiDeps): void {
  r.get('/status', async () => ({ status: 'ok', gitHost }));

  r.post('/apps', { schema: { body: S.createAppBody } }, async (req: Req<unknown, CreateAppInput>, reply) => {
    validateAppName(req.body.name);
    reply.status(201);
    return store.createApp(req.body);
  });
  r.get('/apps', async () => store.listApps());
  r.get('/apps/:app', { schema: { params: S.appParams } }, async (req: Req) => app(req.params.app));
  r.patch('/apps/:app', { schema: { params: S.appParams, body: S.updateAppBody } }, async (req: Req<{ app: string }, UpdateAppInput>) => store.updateApp(req.params.app, req.body));
  r.delete('/apps/:app', { schema: { params: S.appParams } }, async (req: Req) => {
    const a = await app(req.params.app);
    await deployments.abort(a.id, `app ${a.name} is being deleted`);
    const deleted = await store.deleteApp(a.id);
    await onAppDeleted?.(deleted);
    return deleted;
  });
}
