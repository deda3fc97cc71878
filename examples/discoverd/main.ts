/**
 * discoverd: the discovery HTTP server as a daemon (Flynn's discoverd).
 *
 *   npm start                                   # memory backend on 127.0.0.1:1111
 *   npm start -- --backend etcd --etcd http://127.0.0.1:2379 --listen 127.0.0.1:1111
 *
 * Flags win over env: DISCOVERD_BACKEND, ETCD_ENDPOINTS (comma separated), DISCOVERD_PREFIX,
 * DISCOVERD_LISTEN, LOG_LEVEL. Stops cleanly on SIGINT/SIGTERM.
 */
import { parseArgs } from 'node:util';
import { createConsoleLogger, type LogLevel } from '../../src/common/logger.js';
import { createDiscovery, type DiscoveryConfig } from '../../src/discovery/create.js';
import { startDiscoveryServer } from '../../src/discovery/server.js';

const usage = `usage: discoverd [--backend memory|etcd] [--etcd URL[,URL...]] [--prefix /flynn-ts] [--listen HOST:PORT] [--log-level debug|info|warn|error]`;

function fail(message: string): never {
  process.stderr.write(`discoverd: ${message}\n${usage}\n`);
  process.exit(2);
}

let flags;
try {
  flags = parseArgs({
    options: {
      backend: { type: 'string' },
      etcd: { type: 'string' },
      prefix: { type: 'string' },
      listen: { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  }).values;
} catch (err) {
  fail((err as Error).message);
}
if (flags.help) {
  process.stdout.write(usage + '\n');
  process.exit(0);
}

const env = process.env;
const level = (flags['log-level'] ?? env.LOG_LEVEL ?? 'info') as LogLevel;
if (!['debug', 'info', 'warn', 'error'].includes(level)) fail(`unknown log level ${level}`);
const logger = createConsoleLogger({ level });

const backend = flags.backend ?? env.DISCOVERD_BACKEND ?? 'memory';
const listen = flags.listen ?? env.DISCOVERD_LISTEN ?? '127.0.0.1:1111';
const match = /^(.+):(\d{1,5})$/.exec(listen);
if (!match) fail(`--listen expects HOST:PORT, got ${listen}`);
const [, host, port] = match as unknown as [string, string, string];

let config: DiscoveryConfig;
if (backend === 'memory') {
  config = { backend: 'memory' };
} else if (backend === 'etcd') {
  const endpoints = (flags.etcd ?? env.ETCD_ENDPOINTS ?? 'http://127.0.0.1:2379').split(',').map((s) => s.trim()).filter(Boolean);
  const prefix = flags.prefix ?? env.DISCOVERD_PREFIX;
  config = { backend: 'etcd', endpoints, ...(prefix === undefined ? {} : { prefix }) };
} else {
  fail(`unknown backend ${backend}: expected memory or etcd`);
}

try {
  const discovery = createDiscovery(config, { logger });
  const server = await startDiscoveryServer({ discovery, host, port: Number(port), logger });
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
  logger.error('cannot start', { err: (err as Error).message });
  process.exit(1);
}
