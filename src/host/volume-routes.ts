/** The host agent's volume endpoints (see volumes.ts): create, list, show, delete. */
import type { FastifyInstance } from 'fastify';
import type { VolumeStore } from './volumes.js';

const nameParams = { type: 'object', required: ['name'], properties: { name: { type: 'string', minLength: 1, maxLength: 63 } } } as const;

export function registerVolumeRoutes(app: FastifyInstance, volumes: VolumeStore): void {
  app.post<{ Body: { name: string } }>(
    '/volumes',
    { schema: { body: { type: 'object', required: ['name'], properties: { name: { type: 'string' } }, additionalProperties: false } } },
    async (request, reply) => reply.status(201).send(await volumes.create(request.body)),
  );
  app.get('/volumes', async () => volumes.list());
  app.get<{ Params: { name: string } }>('/volumes/:name', { schema: { params: nameParams } }, async (request) => volumes.get(request.params.name));
  app.delete<{ Params: { name: string } }>('/volumes/:name', { schema: { params: nameParams } }, async (request, reply) => {
    await volumes.delete(request.params.name);
    return reply.status(204).send();
  });
}
