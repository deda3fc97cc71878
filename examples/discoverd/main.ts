/**
 * discoverd: the discovery HTTP server as a daemon (Flynn's discoverd).
 *
 *   npm run discoverd                           # memory backend on 127.0.0.1:1111
 *   npm run discoverd -- --backend etcd --etcd http://127.0.0.1:2379 --listen 127.0.0.1:1111
 *
 * Flags win over env (`--help` lists every flag, its env twin and default). Stops cleanly on
 * SIGINT/SIGTERM. Every request needs the discovery key, `DISCOVERD_KEY` (a cluster's is
 * `CONTROLLER_KEY=... npm run -s host-key -- --component discovery`, which bootstrap sends when its
 * manifest names a discovery server); `--insecure-no-auth` serves without one.
 */
import { createConsoleLogger } from '../../src/common/logger.js';
import { createDiscovery, type DiscoveryConfig } from '../../src/discovery/create.js';
import { startDiscoveryServer } from '../../src/discovery/server.js';
import { listenFailure, parseCli } from '../shared/cli-args.js';

const cli = parseCli({
  name: 'discoverd',
  usage: 'npm run discoverd -- [flags]   (or: node --import tsx examples/discoverd/main.ts [flags])',
  summary: 'The discovery HTTP server as a daemon (Flynn discoverd), on a memory or etcd backend.',
  flags: {
    backend: { type: 'string', value: 'memory|etcd', env: 'DISCOVERD_BACKEND', default: 'memory', help: 'where registrations live' },
    etcd: { type: 'string', value: 'URL[,URL]', env: 'ETCD_ENDPOINTS', default: 'http://127.0.0.1:2379', help: 'etcd endpoints, with --backend etcd' },
    prefix: { type: 'string', value: 'PREFIX', env: 'DISCOVERD_PREFIX', help: 'etcd key prefix (default /flynn-ts)' },
    listen: { type: 'string', value: 'HOST:PORT', env: 'DISCOVERD_LISTEN', default: '127.0.0.1:1111', help: 'HTTP listen address' },
    'log-level': { type: 'string', value: 'debug|info|warn|error', env: 'LOG_LEVEL', default: 'info', help: 'log level' },
    'insecure-no-auth': { type: 'boolean', help: 'serve without a key: anyone reaching it can register a fake host agent' },
  },
  notes: 'environment without a flag:\n  DISCOVERD_KEY    the key every request needs (required unless --insecure-no-auth)',
});
const { values } = cli;
const logger = createConsoleLogger({ level: cli.oneOf('log-level', ['debug', 'info', 'warn', 'error'] as const) });
const backend = cli.oneOf('backend', ['memory', 'etcd'] as const);
const key = process.env.DISCOVERD_KEY || undefined;
if (!key && !values['insecure-no-auth']) cli.fail('set DISCOVERD_KEY to the discovery key, or pass --insecure-no-auth');
if (key && values['insecure-no-auth']) cli.fail('give either DISCOVERD_KEY or --insecure-no-auth, not both');
const match = /^(.+):(\d{1,5})$/.exec(values.listen);
if (!match) cli.fail(`--listen expects HOST:PORT, got ${values.listen}`);
const [, host, port] = match as unknown as [string, string, string];

let config: DiscoveryConfig;
if (backend === 'etcd') {
  const endpoints = values.etcd.split(',').map((s) => s.trim()).filter(Boolean);
  config = { backend: 'etcd', endpoints, ...(values.prefix === undefined ? {} : { prefix: values.prefix }) };
} else {
  config = { backend: 'memory' };
}

try {
  const discovery = createDiscovery(config, { logger });
  const server = await startDiscoveryServer({ discovery, host, port: Number(port), logger, ...(key ? { key } : {}) });
  if (!key) logger.warn('no authentication (--insecure-no-auth): anyone who reaches discoverd can register a fake host agent');
  logger.info('discoverd ready', { backend, url: server.url });
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('shutting down', { signal });
    await server.close();
    await discovery.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
} catch (err) {
  console.error(`discoverd: ${listenFailure(err, 'discovery server', values.listen, '--listen HOST:PORT') ?? (err as Error).message}`);
  process.exit(1);
}
