/** JSON schemas of the controller's request bodies and params (fastify/ajv). */

const stringMap = { type: 'object', additionalProperties: { type: 'string' } } as const;
const strategy = { type: 'string', enum: ['all-at-once', 'one-by-one'] } as const;
const processType = {
  type: 'object',
  required: ['cmd'],
  additionalProperties: false,
  properties: {
    cmd: { type: 'array', minItems: 1, items: { type: 'string' } },
    ports: { type: 'array', items: { type: 'integer', minimum: 1, maximum: 65535 } },
  },
} as const;
const processTypes = { type: 'object', additionalProperties: processType } as const;
const counts = { type: 'object', additionalProperties: { type: 'integer', minimum: 0, maximum: 10_000 } } as const;

export const appParams = { type: 'object', required: ['app'], properties: { app: { type: 'string', minLength: 1 } } } as const;

export const createAppBody = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: { name: { type: 'string' }, meta: stringMap, strategy },
} as const;

export const updateAppBody = { type: 'object', additionalProperties: false, properties: { meta: stringMap, strategy } } as const;

export const createArtifactBody = {
  type: 'object',
  required: ['url'],
  additionalProperties: false,
  properties: { type: { type: 'string', enum: ['slug', 'docker'] }, url: { type: 'string', minLength: 1 }, archiveUrl: { type: 'string', minLength: 1 }, sha256: { type: 'string', pattern: '^[0-9a-f]{64}$' }, processes: processTypes },
} as const;

export const createReleaseBody = {
  type: 'object',
  additionalProperties: false,
  properties: { artifactId: { type: ['string', 'null'] }, env: stringMap, processes: processTypes },
} as const;

export const deployBody = {
  type: 'object',
  required: ['release'],
  additionalProperties: false,
  properties: { release: { type: 'string', minLength: 1 }, strategy },
} as const;

export const rollbackBody = { type: 'object', additionalProperties: false, properties: { release: { type: 'string', minLength: 1 } } } as const;

export const envBody = {
  type: 'object',
  additionalProperties: false,
  properties: { set: stringMap, unset: { type: 'array', items: { type: 'string' } } },
} as const;

export const formationBody = { type: 'object', required: ['processes'], additionalProperties: false, properties: { processes: counts } } as const;

export const runJobBody = {
  type: 'object',
  required: ['cmd'],
  additionalProperties: false,
  properties: { cmd: { type: 'array', minItems: 1, items: { type: 'string' } }, env: stringMap, attach: { type: 'boolean' }, memoryMb: { type: 'integer', minimum: 6, maximum: 1048576 } },
} as const;

const ms = { type: 'integer', minimum: 1, maximum: 2_147_483_647 } as const;
const routeTls = { type: 'object', required: ['cert', 'key'], additionalProperties: false, properties: { cert: { type: 'string' }, key: { type: 'string' } } } as const;
const routeTimeouts = {
  type: 'object',
  additionalProperties: false,
  properties: { connectMs: ms, responseHeadersMs: ms, idleMs: ms, websocketIdleMs: ms },
} as const;
const routeHealthCheck = {
  type: 'object',
  required: ['path'],
  additionalProperties: false,
  properties: { path: { type: 'string' }, intervalMs: ms, timeoutMs: ms },
} as const;

export const createRouteBody = {
  type: 'object',
  required: ['type', 'service'],
  properties: {
    type: { type: 'string', enum: ['http', 'tcp'] },
    service: { type: 'string', minLength: 1 },
    domain: { type: 'string' },
    path: { type: 'string' },
    sticky: { type: 'boolean' },
    tls: routeTls,
    acme: { type: 'boolean' },
    timeouts: routeTimeouts,
    healthCheck: routeHealthCheck,
    redirectHttps: { type: 'boolean' },
    port: { type: 'integer' },
  },
  additionalProperties: false,
} as const;

/** `null` removes an optional field. */
export const updateHttpRouteBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    service: { type: 'string', minLength: 1 },
    sticky: { type: 'boolean' },
    tls: { anyOf: [routeTls, { type: 'null' }] },
    acme: { type: 'boolean' },
    timeouts: { anyOf: [routeTimeouts, { type: 'null' }] },
    healthCheck: { anyOf: [routeHealthCheck, { type: 'null' }] },
    redirectHttps: { type: 'boolean' },
  },
} as const;

export const addKeyBody = { type: 'object', required: ['key'], additionalProperties: false, properties: { key: { type: 'string', minLength: 1 } } } as const;

export const logQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { job: { type: 'string' }, type: { type: 'string' }, follow: { type: 'string', enum: ['0', '1', 'true', 'false'] }, lines: { type: 'string', pattern: '^[0-9]+$' } },
} as const;

export const eventsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { app: { type: 'string' }, last_event_id: { type: 'string', pattern: '^[0-9]+$' } },
} as const;

export const deployGitBody = {
  type: 'object',
  required: ['url'],
  additionalProperties: false,
  properties: { url: { type: 'string', minLength: 1, maxLength: 2000 }, ref: { type: 'string', minLength: 1, maxLength: 200 } },
} as const;
