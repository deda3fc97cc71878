import type { FastifyInstance } from 'fastify';
import { createApiServer, listenApi, requireKey } from '../common/http/api-server.js';
import { FlynnError } from '../common/errors.js';
import { SseWriter } from '../common/http/sse.js';
import { every, systemClock, type Clock } from '../common/clock.js';
import { CloseGuard } from '../common/lifecycle.js';
import { silentLogger, type Logger } from '../common/logger.js';
import type { AsyncQueue } from '../common/async-queue.js';
import type { Discovery, Registration } from './discovery.js';
import { EventHub, type NumberedEvent } from './event-hub.js';
import { DiscoveryErrorCodes, DiscoveryInputError, DiscoveryUnauthorizedError, DiscoveryUnavailableError, InstanceNotFoundError } from './errors.js';
import { DISCOVERY_DEFAULTS, type RegisterResponse } from './types.js';
import { validateService } from './validate.js';

export interface DiscoveryServerOptions {
  /** The backend the server fronts (memory or etcd). The caller owns it and closes it. */
  discovery: Discovery;
  /** Address to bind; a loopback address in tests. Default {@link DISCOVERY_SERVER_DEFAULTS}.host. */
  host?: string;
  /** Port to bind; 0 picks a free one. Default {@link DISCOVERY_SERVER_DEFAULTS}.port. */
  port?: number;
  /** How often registrations whose heartbeats stopped are looked for, in ms. */
  sweepIntervalMs?: number;
  /**
   * When set, every request needs `Authorization: Bearer <key>` (or Basic with the key as
   * password), checked in constant time; a missing or wrong key gets 401
   * `FLYNN_ERR_DISCOVERY_UNAUTHORIZED`. In a cluster: `componentKey(clusterKey, 'discovery')`.
   * Default: none (anyone who reaches the server can register a fake host agent; see docs/security.md).
   */
  key?: string;
  /** Default silent. */
  logger?: Logger;
  /** Time of the registrations' TTLs and the sweep. Default the system clock. */
  clock?: Clock;
}

export const DISCOVERY_SERVER_DEFAULTS = Object.freeze({
  host: '127.0.0.1',
  /** Flynn's discoverd port. */
  port: 1111,
  /** Check for silent registrations this often, in ms. */
  sweepIntervalMs: 100,
  /** Comment lines on idle event streams, in ms. */
  keepAliveMs: 15_000,
  /** Recent events kept per watched service for clients resuming with `Last-Event-Id`. */
  historySize: 1_000,
  /** How long a service's backend watch outlives its last event stream, in ms. */
  lingerMs: 30_000,
});

export interface DiscoveryServer {
  /** `http://host:port`. */
  readonly url: string;
  /** `host:port` actually bound. */
  readonly addr: string;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

interface Held {
  registration: Registration;
  ttlMs: number;
  expiresAt: number;
}

/**
 * The HTTP face of discovery (Flynn's discoverd): processes without a direct line to the backend
 * register, heartbeat, list and watch over HTTP. The server holds each registration on the backend
 * for its client and drops it when the client's heartbeats stop for the TTL.
 *
 * ```
 * PUT    /services/:service/instances                 {addr, proto?, meta?, ttlMs?} → 201 RegisterResponse
 * POST   /services/:service/instances/:id/heartbeat   → 204 (404 when the instance is gone)
 * PATCH  /services/:service/instances/:id             {meta} → 200 {instance}
 * DELETE /services/:service/instances/:id             → 204
 * GET    /services/:service/instances                 → {instances}
 * GET    /services/:service/leader                    → {leader}
 * GET    /services/:service/events                    → text/event-stream of ServiceEvents
 * ```
 */
export async function startDiscoveryServer(options: DiscoveryServerOptions): Promise<DiscoveryServer> {
  const discovery = options.discovery;
  const logger = (options.logger ?? silentLogger).child({ component: 'discoverd' });
  const held = new Map<string, Held>();
  const streams = new Set<Stream>();
  const hub = new EventHub(discovery, { historySize: DISCOVERY_SERVER_DEFAULTS.historySize, lingerMs: DISCOVERY_SERVER_DEFAULTS.lingerMs });
  const guard = new CloseGuard('discovery server');
  const app = createApiServer({ logger });
  if (options.key !== undefined) {
    if (typeof options.key !== 'string' || options.key.length === 0) throw new DiscoveryInputError(DiscoveryErrorCodes.INVALID_CONFIG, 'key must be a non-empty string when set', { field: 'key' });
    requireKey(app, options.key, { scheme: 'Bearer', realm: 'flynn-discoverd', refuse: (check) => new DiscoveryUnauthorizedError(check === 'missing' ? 'missing discovery key (Authorization: Bearer <key>)' : 'wrong discovery key') });
  }
  const clock = options.clock ?? systemClock;
  routes(app, discovery, hub, held, streams, clock);

  const drop = async (id: string, why: string) => {
    const entry = held.get(id);
    if (!entry) return;
    held.delete(id);
    logger.info('instance dropped', { id, service: entry.registration.instance.service, why });
    await entry.registration.unregister().catch((err: Error) => logger.warn('unregister failed', { id, err: err.message }));
  };
  const stopSweeping = every(
    clock,
    options.sweepIntervalMs ?? DISCOVERY_SERVER_DEFAULTS.sweepIntervalMs,
    () => {
      const now = clock.now();
      for (const [id, entry] of held) if (entry.expiresAt <= now) void drop(id, 'heartbeats stopped');
    },
    { unref: true },
  );

  const host = options.host ?? DISCOVERY_SERVER_DEFAULTS.host;
  let addr: string;
  try {
    addr = await listenApi(app, host, options.port ?? DISCOVERY_SERVER_DEFAULTS.port);
  } catch (err) {
    stopSweeping();
    await app.close();
    throw err;
  }
  logger.info('listening', { addr });
  const close = () =>
    guard.close(async () => {
      stopSweeping();
      for (const stream of streams) {
        stream.events.end();
        stream.writer.end();
      }
      hub.close();
      await app.close();
      await Promise.all([...held.keys()].map((id) => drop(id, 'server closing')));
    });
  return { url: `http://${addr}`, addr, close, [Symbol.asyncDispose]: close };
}

interface Stream {
  writer: SseWriter;
  events: AsyncQueue<NumberedEvent>;
}

function routes(app: FastifyInstance, discovery: Discovery, hub: EventHub, held: Map<string, Held>, streams: Set<Stream>, clock: Clock): void {
  type Params = { service: string; id: string };
  const find = (params: Params): Held => {
    validateService(params.service);
    const entry = held.get(params.id);
    if (!entry || entry.registration.instance.service !== params.service) throw new InstanceNotFoundError(params.id);
    return entry;
  };
  const object = (body: unknown): Record<string, unknown> => {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new DiscoveryInputError(DiscoveryErrorCodes.INVALID_REQUEST, 'request body must be a JSON object', { field: 'body' });
    }
    return body as Record<string, unknown>;
  };

  app.put<{ Params: Params }>('/services/:service/instances', async (request, reply) => {
    const service = validateService(request.params.service);
    const body = object(request.body);
    const ttlMs = body.ttlMs ?? DISCOVERY_DEFAULTS.ttlMs;
    const registration = await discovery.register({
      service,
      addr: body.addr as string,
      ...(body.proto === undefined ? {} : { proto: body.proto as string }),
      ...(body.meta === undefined ? {} : { meta: body.meta as Record<string, string> }),
      ttlMs: ttlMs as number,
    });
    const ttl = ttlMs as number;
    held.set(registration.instance.id, { registration, ttlMs: ttl, expiresAt: clock.now() + ttl });
    void registration.lost.then(() => held.delete(registration.instance.id));
    const answer: RegisterResponse = { instance: registration.instance, ttlMs: ttl, heartbeatIntervalMs: Math.max(100, Math.floor(ttl / 3)) };
    return reply.status(201).send(answer);
  });

  app.post<{ Params: Params }>('/services/:service/instances/:id/heartbeat', async (request, reply) => {
    const entry = find(request.params);
    entry.expiresAt = clock.now() + entry.ttlMs;
    return reply.status(204).send();
  });

  app.patch<{ Params: Params }>('/services/:service/instances/:id', async (request) => {
    const entry = find(request.params);
    const body = object(request.body);
    if (body.meta === undefined) throw new DiscoveryInputError(DiscoveryErrorCodes.INVALID_META, 'invalid meta: required', { field: 'meta' });
    await entry.registration.setMeta(body.meta as Record<string, string>);
    entry.expiresAt = clock.now() + entry.ttlMs;
    return { instance: entry.registration.instance };
  });

  app.delete<{ Params: Params }>('/services/:service/instances/:id', async (request, reply) => {
    const entry = find(request.params);
    held.delete(request.params.id);
    await entry.registration.unregister();
    return reply.status(204).send();
  });

  app.get<{ Params: Params }>('/services/:service/instances', async (request) => ({ instances: await discovery.instances(request.params.service) }));

  app.get<{ Params: Params }>('/services/:service/leader', async (request) => ({ leader: await discovery.leader(request.params.service) }));

  app.get<{ Params: Params }>('/services/:service/events', async (request, reply) => {
    const service = validateService(request.params.service);
    const lastEventId = request.headers['last-event-id'];
    const events = await hub.subscribe(service, typeof lastEventId === 'string' ? lastEventId : undefined);
    reply.hijack();
    const writer = new SseWriter(reply.raw, { keepAliveMs: DISCOVERY_SERVER_DEFAULTS.keepAliveMs });
    const stream = { writer, events };
    streams.add(stream);
    void writer.closed.then(() => events.end());
    try {
      for await (const { id, event } of events) writer.sendJson(event.type, event, id);
    } catch (err) {
      writer.sendError(err instanceof FlynnError ? err : new DiscoveryUnavailableError((err as Error).message));
    } finally {
      streams.delete(stream);
      writer.end();
    }
  });
}
