/**
 * The host agent's HTTP API. JSON in and out; bad input is answered 400 with a JSON error naming
 * the field. Logs stream as NDJSON (one {@link LogLine} per line), job state changes as SSE.
 */
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { createApiServer, listenApi, requireKey } from '../common/http/api-server.js';
import { keyChecker } from '../common/http/key-auth.js';
import { SseWriter } from '../common/http/sse.js';
import { streamError } from '../common/http/stream-error.js';
import type { Logger } from '../common/logger.js';
import type { HostAgent } from './agent.js';
import { attachUpgradeHandler } from './attach.js';
import { HostInputError, HostUnauthorizedError } from './errors.js';
import { registerVolumeRoutes } from './volume-routes.js';

const jobBody = {
  type: 'object',
  required: ['id', 'app', 'release', 'type', 'cmd'],
  properties: {
    id: { type: 'string', minLength: 1, maxLength: 64 },
    app: { type: 'string', minLength: 1, maxLength: 100 },
    release: { type: 'string', minLength: 1, maxLength: 100 },
    type: { type: 'string', minLength: 1, maxLength: 100 },
    image: { type: 'string', minLength: 1 },
    cmd: { type: 'array', minItems: 1, items: { type: 'string' } },
    env: { type: 'object', additionalProperties: { type: 'string' } },
    ports: {
      type: 'array',
      items: {
        type: 'object',
        required: ['port'],
        properties: { port: { type: 'integer', minimum: 1, maximum: 65535 }, proto: { enum: ['tcp', 'udp'] }, service: { type: 'string' } },
        additionalProperties: false,
      },
    },
    limits: {
      type: 'object',
      properties: { memoryBytes: { type: 'integer', minimum: 1 }, cpuShares: { type: 'integer', minimum: 1 } },
      additionalProperties: false,
    },
    meta: { type: 'object', additionalProperties: { type: 'string' } },
    oneOff: { type: 'boolean' },
    stdin: { type: 'boolean' },
    tty: { type: 'boolean' },
    volumes: { type: 'array', items: { type: 'object' } },
    alias: { type: 'string' },
    artifact: { type: 'object', required: ['url'], properties: { url: { type: 'string', minLength: 1 }, sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' } }, additionalProperties: false },
    imageArchive: { type: 'object', required: ['url'], properties: { url: { type: 'string', minLength: 1 } }, additionalProperties: false },
  },
  additionalProperties: false,
} as const;

const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 64 } } } as const;

function flag(value: string | undefined, field: string): boolean {
  if (value === undefined || value === '' || value === '0' || value === 'false') return false;
  if (value === '1' || value === 'true') return true;
  throw new HostInputError(`${field} must be 1/0 or true/false`, field);
}

function count(value: string | undefined, field: string): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (!/^\d{1,7}$/.test(value)) throw new HostInputError(`${field} must be a non-negative integer`, field);
  return Number(value);
}

export interface HostServerOptions {
  /**
   * The host key every request must carry (`Authorization: Bearer <key>`, or Basic with the key as
   * password), checked in constant time; a missing or wrong key gets 401 before any route runs.
   * `null` serves without authentication (only for a caller that asked for it, see
   * `StartHostAgentOptions.insecureNoAuth`).
   */
  key: string | null;
  logger?: Logger;
}

/** The agent's HTTP API, built but not yet listening. */
export interface HostServer {
  /** Listen on `host` and `port` (0: any free port); resolves with the bound `host:port`. */
  listen(host: string, port: number): Promise<string>;
  /** Stop accepting; open log follows, event streams and attachments are ended, so it never waits on a client. */
  close(): Promise<void>;
}

/** Build the API serving `agent`. The caller listens and closes. */
export function createHostServer(agent: HostAgent, options: HostServerOptions): HostServer {
  const app = createApiServer(options.logger ? { logger: options.logger } : {});
  const checkKey = options.key === null ? null : keyChecker(options.key);
  if (options.key !== null) {
    requireKey(app, options.key, { scheme: 'Bearer', realm: 'flynn-host', refuse: (check) => new HostUnauthorizedError(check === 'missing' ? 'missing host key (Authorization: Bearer <key>)' : 'wrong host key') });
  }
  // Log follows and event streams end when the server closes, so close never waits on a client.
  const streams = new Set<ServerResponse>();
  const track = (res: ServerResponse) => {
    streams.add(res);
    res.once('close', () => streams.delete(res));
  };
  const sockets = new Set<Duplex>();
  app.addHook('preClose', async () => {
    for (const res of streams) res.destroy();
    for (const socket of sockets) socket.destroy();
  });
  // Attach to an interactive job (attach.ts): an HTTP Upgrade, outside fastify's routing.
  app.server.on(
    'upgrade',
    attachUpgradeHandler(agent, checkKey, (socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    }),
  );

  app.post('/jobs', { schema: { body: jobBody } }, async (request, reply) => {
    const job = await agent.createJob(request.body);
    return reply.status(201).send(job);
  });

  // `?ended=1`: the ended jobs the agent keeps on disk (ended-jobs.ts), beyond those it still runs or retains.
  app.get<{ Querystring: { ended?: string } }>('/jobs', async (request) => (flag(request.query.ended, 'ended') ? agent.endedJobs() : agent.listJobs()));

  app.get<{ Params: { id: string } }>('/jobs/:id', { schema: { params: idParams } }, async (request) => agent.getJob(request.params.id));

  app.delete<{ Params: { id: string }; Querystring: { grace_ms?: string } }>('/jobs/:id', { schema: { params: idParams } }, async (request) => {
    const graceMs = count(request.query.grace_ms, 'grace_ms');
    return agent.stopJob(request.params.id, graceMs === undefined ? {} : { graceMs });
  });

  app.post<{ Params: { id: string }; Body: { signal: string } }>(
    '/jobs/:id/signal',
    { schema: { params: idParams, body: { type: 'object', required: ['signal'], properties: { signal: { type: 'string' } }, additionalProperties: false } } },
    async (request, reply) => {
      await agent.signalJob(request.params.id, request.body.signal);
      return reply.status(204).send();
    },
  );

  app.get<{ Params: { id: string }; Querystring: { follow?: string; lines?: string } }>('/jobs/:id/logs', { schema: { params: idParams } }, async (request, reply) => {
    const follow = flag(request.query.follow, 'follow');
    const tail = count(request.query.lines, 'lines');
    const abort = new AbortController();
    const lines = agent.logs(request.params.id, { follow, signal: abort.signal, ...(tail === undefined ? {} : { tail }) });
    reply.hijack();
    const res = reply.raw;
    track(res);
    res.writeHead(200, { 'content-type': 'application/x-ndjson; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
    res.flushHeaders();
    res.once('close', () => abort.abort());
    try {
      for await (const line of lines) {
        if (res.destroyed) break;
        res.write(JSON.stringify(line) + '\n');
      }
    } catch (err) {
      if (!abort.signal.aborted) res.write(JSON.stringify({ error: streamError(err) }) + '\n');
    }
    res.end();
  });

  app.get<{ Querystring: { since?: string } }>('/events', async (request, reply) => {
    const header = request.headers['last-event-id'];
    const since = count(typeof header === 'string' ? header : request.query.since, 'since');
    const abort = new AbortController();
    const events = agent.events({ signal: abort.signal, ...(since === undefined ? {} : { since }) });
    reply.hijack();
    track(reply.raw);
    const sse = new SseWriter(reply.raw);
    void sse.closed.then(() => abort.abort());
    try {
      for await (const event of events) sse.sendJson('job', event, String(event.seq));
    } catch (err) {
      sse.sendError(err);
    }
    sse.end();
  });

  app.get('/status', async () => agent.status());
  registerVolumeRoutes(app, agent.volumes);

  return { listen: (host, port) => listenApi(app, host, port), close: () => app.close() };
}
