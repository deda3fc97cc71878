import * as S from '../schemas.js';
import type { ApiDeps, ApiServer, Req } from './deps.js';

/** `/keys`: the SSH keys allowed to `git push`. */
export function registerKeyRoutes(r: ApiServer, { store }: ApiDeps): void {
  r.get('/keys', async () => store.listKeys());
  r.post('/keys', { schema: { body: S.addKeyBody } }, async (req: Req<unknown, { key: string }>, reply) => {
    reply.status(201);
    return store.addKey(req.body.key);
  });
  r.delete('/keys/:key', async (req: Req<{ key: string }>) => store.removeKey(req.params.key));
}
