/**
 * The host daemon (flynn-host): one agent on this machine.
 *
 *   tsx examples/host/main.ts [--id host-1] [--advertise-addr 127.0.0.2] [--listen 127.0.0.2:1113]
 *     [--runtime docker|process] [--image flynn-ts/runtime:latest] [--tags disk=ssd,zone=a]
 *     [--memory 4294967296] [--discovery memory|etcd] [--etcd-endpoints http://127.0.0.1:2379]
 *     [--etcd-prefix /flynn-ts] [--registration-ttl 10000] [--container-labels k=v,...]
 *     [--log-level info] [--json-logs]
 *
 * Every flag has an environment twin: FLYNN_HOST_ID, FLYNN_ADVERTISE_ADDR, FLYNN_HOST_LISTEN,
 * FLYNN_RUNTIME, FLYNN_RUNTIME_IMAGE, FLYNN_HOST_TAGS, FLYNN_HOST_MEMORY, FLYNN_DISCOVERY,
 * ETCD_ENDPOINTS, FLYNN_ETCD_PREFIX, FLYNN_REGISTRATION_TTL, FLYNN_CONTAINER_LABELS,
 * FLYNN_LOG_LEVEL. SIGINT/SIGTERM close the agent (docker jobs keep running and are adopted by
 * the next agent with the same id; process jobs are stopped).
 */
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { createConsoleLogger, type LogLevel } from '../../src/common/logger.js';
import { createDiscovery } from '../../src/discovery/create.js';
import { startHostAgent } from '../../src/host/agent.js';
import { createRuntime } from '../../src/host/create.js';

const { values } = parseArgs({
  options: {
    id: { type: 'string', default: process.env.FLYNN_HOST_ID ?? hostname().toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 63) },
    'advertise-addr': { type: 'string', default: process.env.FLYNN_ADVERTISE_ADDR ?? '127.0.0.2' },
    listen: { type: 'string', default: process.env.FLYNN_HOST_LISTEN },
    runtime: { type: 'string', default: process.env.FLYNN_RUNTIME ?? 'docker' },
    image: { type: 'string', default: process.env.FLYNN_RUNTIME_IMAGE },
    tags: { type: 'string', default: process.env.FLYNN_HOST_TAGS ?? '' },
    memory: { type: 'string', default: process.env.FLYNN_HOST_MEMORY },
    discovery: { type: 'string', default: process.env.FLYNN_DISCOVERY ?? 'memory' },
    'etcd-endpoints': { type: 'string', default: process.env.ETCD_ENDPOINTS ?? 'http://127.0.0.1:2379' },
    'etcd-prefix': { type: 'string', default: process.env.FLYNN_ETCD_PREFIX },
    'registration-ttl': { type: 'string', default: process.env.FLYNN_REGISTRATION_TTL },
    'container-labels': { type: 'string', default: process.env.FLYNN_CONTAINER_LABELS ?? '' },
    'log-level': { type: 'string', default: process.env.FLYNN_LOG_LEVEL ?? 'info' },
    'json-logs': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h' },
  },
});

if (values.help) {
  console.log('usage: tsx examples/host/main.ts [--id ID] [--advertise-addr IP] [--listen HOST:PORT] [--runtime docker|process] [--image IMAGE] [--tags k=v,...] [--memory BYTES] [--discovery memory|etcd] [--etcd-endpoints URL,...] [--etcd-prefix PREFIX] [--registration-ttl MS] [--container-labels k=v,...]');
  process.exit(0);
}

function fail(message: string): never {
  console.error(`error: ${message}`);
  process.exit(2);
}

const logger = createConsoleLogger({ level: values['log-level'] as LogLevel, json: values['json-logs'] });
function pairs(flag: string, text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .split(',')
      .filter(Boolean)
      .map((kv) => {
        const [k, ...v] = kv.split('=');
        if (!k || v.length === 0) fail(`--${flag} wants k=v,k=v; got ${JSON.stringify(kv)}`);
        return [k, v.join('=')];
      }),
  );
}
const tags = pairs('tags', values.tags);
const containerLabels = pairs('container-labels', values['container-labels']);
let listen: { host?: string; port?: number } | undefined;
if (values.listen) {
  const m = /^(.+):(\d+)$/.exec(values.listen);
  if (!m) fail(`--listen wants host:port; got ${JSON.stringify(values.listen)}`);
  listen = { host: m[1] as string, port: Number(m[2]) };
}
if (values.discovery !== 'memory' && values.discovery !== 'etcd') fail(`--discovery must be memory or etcd; got ${values.discovery}`);
if (values.runtime !== 'docker' && values.runtime !== 'process') fail(`--runtime must be docker or process; got ${values.runtime}`);
const memoryBytes = values.memory === undefined ? undefined : Number(values.memory);
if (memoryBytes !== undefined && !Number.isInteger(memoryBytes)) fail(`--memory wants bytes; got ${values.memory}`);
const ttlMs = values['registration-ttl'] === undefined ? undefined : Number(values['registration-ttl']);
if (ttlMs !== undefined && !(Number.isInteger(ttlMs) && ttlMs > 0)) fail(`--registration-ttl wants milliseconds; got ${values['registration-ttl']}`);

const discovery =
  values.discovery === 'etcd'
    ? createDiscovery(
        { backend: 'etcd', endpoints: values['etcd-endpoints'].split(',').map((e) => e.trim()), ...(values['etcd-prefix'] ? { prefix: values['etcd-prefix'] } : {}) },
        { logger },
      )
    : createDiscovery({ backend: 'memory' });
const runtime = createRuntime(
  values.runtime === 'docker'
    ? { backend: 'docker', logger, labels: containerLabels, ...(values.image ? { image: values.image } : {}) }
    : { backend: 'process', logger },
);

try {
  const host = await startHostAgent({
    id: values.id,
    advertiseAddr: values['advertise-addr'],
    discovery,
    runtime,
    tags,
    logger,
    ...(listen ? { listen } : {}),
    ...(memoryBytes !== undefined ? { capacity: { memoryBytes } } : {}),
    ...(ttlMs !== undefined ? { registrationTtlMs: ttlMs } : {}),
  });
  logger.info('host agent up', { id: values.id, api: host.url, runtime: runtime.name, advertiseAddr: values['advertise-addr'] });
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('shutting down', { signal });
    await host.close();
    await runtime.close();
    await discovery.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
} catch (err) {
  await runtime.close().catch(() => {});
  await discovery.close().catch(() => {});
  fail((err as Error).message);
}
