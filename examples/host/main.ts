/**
 * The host daemon (flynn-host): one agent on this machine.
 *
 *   tsx examples/host/main.ts [--id host-1] [--advertise-addr 127.0.0.2] [--listen 127.0.0.2:1113]
 *     [--runtime docker|process] [--image flynn-ts/runtime:latest] [--tags disk=ssd,zone=a]
 *     [--memory 4294967296] [--discovery memory|etcd] [--etcd-endpoints http://127.0.0.1:2379]
 *     [--etcd-prefix /flynn-ts] [--registration-ttl 2000] [--container-labels k=v,...] [--volumes-dir DIR]
 *     [--log-level info] [--json-logs] [--insecure-no-auth]
 *
 * The API needs the host key: `FLYNN_HOST_KEY` (better than `--key`, which shows in `ps`), the
 * `hostAgentKey` that `npm start`/`npm run bootstrap` print (derived from the cluster key: see
 * docs/security.md). Without one the agent refuses to start, unless `--insecure-no-auth`.
 *
 * Every flag has an environment twin (`--help` lists them: FLYNN_HOST_ID, FLYNN_ADVERTISE_ADDR,
 * FLYNN_HOST_LISTEN, FLYNN_RUNTIME, ..., ETCD_ENDPOINTS, FLYNN_ETCD_PREFIX). SIGINT/SIGTERM close the agent (docker jobs keep running and are adopted by
 * the next agent with the same id; process jobs are stopped).
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { createConsoleLogger, type LogLevel } from '../../src/common/logger.js';
import { createDiscovery } from '../../src/discovery/create.js';
import { startHostAgent } from '../../src/host/start.js';
import { createRuntime } from '../../src/host/create.js';
import { listenFailure, parseCli } from '../shared/cli-args.js';
import { ETCD_CREDENTIAL_FLAGS, ETCD_CREDENTIAL_NOTES, etcdCredentialsOf } from '../shared/etcd-flags.js';

const cli = parseCli({
  name: 'flynn-host',
  usage: 'node --import tsx examples/host/main.ts [flags]',
  summary: 'One host agent on this machine (flynn-host): runs jobs for the scheduler, registered in discovery.',
  flags: {
    id: { type: 'string', value: 'ID', env: 'FLYNN_HOST_ID', default: hostname().toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 63), help: 'host id' },
    'advertise-addr': { type: 'string', value: 'IP', env: 'FLYNN_ADVERTISE_ADDR', default: '127.0.0.2', help: 'address jobs and the API are reached at' },
    listen: { type: 'string', value: 'HOST:PORT', env: 'FLYNN_HOST_LISTEN', help: 'API listen address (default: the advertise address, any free port)' },
    runtime: { type: 'string', value: 'docker|process', env: 'FLYNN_RUNTIME', default: 'docker', help: 'where jobs run' },
    'data-dir': { type: 'string', value: 'DIR', env: 'FLYNN_HOST_DATA_DIR', help: "process jobs' dirs (DIR/jobs), downloaded slugs (DIR/artifacts), volumes (DIR/volumes) and ended jobs with their last lines (DIR/host-state); an agent started again with the same --id and data dir adopts its jobs (default: under the temp dir)" },
    image: { type: 'string', value: 'IMAGE', env: 'FLYNN_RUNTIME_IMAGE', help: 'runtime image (default flynn-ts/runtime:latest)' },
    tags: { type: 'string', value: 'k=v,...', env: 'FLYNN_HOST_TAGS', default: '', help: 'host tags for placement' },
    memory: { type: 'string', value: 'BYTES', env: 'FLYNN_HOST_MEMORY', help: 'memory capacity' },
    discovery: { type: 'string', value: 'memory|etcd', env: 'FLYNN_DISCOVERY', default: 'memory', help: 'where the agent registers' },
    'etcd-endpoints': { type: 'string', value: 'URL[,URL]', env: 'ETCD_ENDPOINTS', default: 'http://127.0.0.1:2379', help: 'etcd endpoints, with --discovery etcd' },
    'etcd-prefix': { type: 'string', value: 'PREFIX', env: 'FLYNN_ETCD_PREFIX', help: 'etcd key prefix (default /flynn-ts)' },
    ...ETCD_CREDENTIAL_FLAGS,
    'registration-ttl': { type: 'string', value: 'MS', env: 'FLYNN_REGISTRATION_TTL', help: 'discovery registration TTL' },
    'container-labels': { type: 'string', value: 'k=v,...', env: 'FLYNN_CONTAINER_LABELS', default: '', help: 'extra labels on every container' },
    'volumes-dir': { type: 'string', value: 'DIR', env: 'FLYNN_VOLUMES_DIR', help: 'where host volumes (the postgres data) are kept: a durable directory (default DATA_DIR/volumes, else under $TMPDIR)' },
    'log-level': { type: 'string', value: 'debug|info|warn|error', env: 'FLYNN_LOG_LEVEL', default: 'info', help: 'log level' },
    'json-logs': { type: 'boolean', help: 'logs as JSON lines' },
    key: { type: 'string', value: 'KEY', env: 'FLYNN_HOST_KEY', help: 'the host key the API requires (prefer the env: a flag shows in ps)' },
    'insecure-no-auth': { type: 'boolean', help: 'serve the API without a key: anyone reaching it runs commands as this user' },
  },
  notes: `environment without a flag:\n${ETCD_CREDENTIAL_NOTES}`,
});
const { values } = cli;
function fail(message: string): never {
  return cli.fail(message);
}

const logger = createConsoleLogger({ level: cli.oneOf('log-level', ['debug', 'info', 'warn', 'error'] as const) satisfies LogLevel, json: values['json-logs'] });
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
if (!values.key && !values['insecure-no-auth']) fail('set FLYNN_HOST_KEY (or --key) to the host key the bootstrap printed, or pass --insecure-no-auth');
if (values.key && values['insecure-no-auth']) fail('give either a key or --insecure-no-auth, not both');
if (values.discovery !== 'memory' && values.discovery !== 'etcd') fail(`--discovery must be memory or etcd; got ${values.discovery}`);
if (values.runtime !== 'docker' && values.runtime !== 'process') fail(`--runtime must be docker or process; got ${values.runtime}`);
const memoryBytes = values.memory === undefined ? undefined : Number(values.memory);
if (memoryBytes !== undefined && !Number.isInteger(memoryBytes)) fail(`--memory wants bytes; got ${values.memory}`);
const ttlMs = values['registration-ttl'] === undefined ? undefined : Number(values['registration-ttl']);
if (ttlMs !== undefined && !(Number.isInteger(ttlMs) && ttlMs > 0)) fail(`--registration-ttl wants milliseconds; got ${values['registration-ttl']}`);

const etcdCredentials = etcdCredentialsOf(values, process.env.ETCD_PASSWORD, fail);
const discovery =
  values.discovery === 'etcd'
    ? createDiscovery(
        { backend: 'etcd', endpoints: values['etcd-endpoints'].split(',').map((e) => e.trim()), ...(values['etcd-prefix'] ? { prefix: values['etcd-prefix'] } : {}), ...(etcdCredentials ? { credentials: etcdCredentials } : {}) },
        { logger },
      )
    : createDiscovery({ backend: 'memory' });
const runtime = createRuntime(
  values.runtime === 'docker'
    ? { backend: 'docker', logger, labels: containerLabels, ...(values.image ? { image: values.image } : {}) }
    : { backend: 'process', logger, ...(values['data-dir'] ? { baseDir: join(values['data-dir'], 'jobs') } : {}) },
);

try {
  const host = await startHostAgent({
    id: values.id,
    advertiseAddr: values['advertise-addr'],
    discovery,
    runtime,
    tags,
    logger,
    ...(values.key ? { key: values.key } : { insecureNoAuth: true }),
    ...(listen ? { listen } : {}),
    ...(memoryBytes !== undefined ? { capacity: { memoryBytes } } : {}),
    ...(ttlMs !== undefined ? { registrationTtlMs: ttlMs } : {}),
    // Volumes hold apps' data: under the data dir when one is given, so a reboot keeps them.
    ...(values['volumes-dir'] ? { volumesDir: values['volumes-dir'] } : values['data-dir'] ? { volumesDir: join(values['data-dir'], 'volumes') } : {}),
    ...(values['data-dir'] ? { artifactsDir: join(values['data-dir'], 'artifacts'), stateDir: join(values['data-dir'], 'host-state') } : {}),
  });
  if (!values.key) logger.warn('the host API has no authentication (--insecure-no-auth): anyone who reaches it can run commands on this host');
  // Before the ready line: whoever waits for it may signal at once.
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
  logger.info('host agent up', { id: values.id, api: host.url, runtime: runtime.name, advertiseAddr: values['advertise-addr'] });
} catch (err) {
  await runtime.close().catch(() => {});
  await discovery.close().catch(() => {});
  console.error(`flynn-host: ${listenFailure(err, 'host agent', values.listen ?? `${values['advertise-addr']}:0`, '--listen HOST:PORT') ?? (err as Error).message}`);
  process.exit(1);
}
