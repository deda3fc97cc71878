/**
 * Run shelf, the blob store, as a daemon on a filesystem directory.
 *
 *   tsx examples/shelf/main.ts [--root DIR] [--host 127.0.0.1] [--port 0] [--max-bytes 1073741824]
 *
 * Env: SHELF_ROOT, SHELF_HOST, SHELF_PORT, SHELF_MAX_BYTES (flags win). Prints the URL on stdout
 * and stops cleanly on SIGINT / SIGTERM.
 *
 *   curl -T slug.tgz http://127.0.0.1:PORT/slugs/app/1.tgz
 *   curl -r 0-99 http://127.0.0.1:PORT/slugs/app/1.tgz
 */
import { parseArgs } from 'node:util';
import { createConsoleLogger } from '../../src/common/logger.js';
import { FsBlobStore, SHELF_DEFAULTS, startShelf } from '../../src/shelf/index.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      root: { type: 'string', default: process.env.SHELF_ROOT ?? '/var/lib/flynn-ts/shelf' },
      host: { type: 'string', default: process.env.SHELF_HOST ?? SHELF_DEFAULTS.host },
      port: { type: 'string', default: process.env.SHELF_PORT ?? '0' },
      'max-bytes': { type: 'string', default: process.env.SHELF_MAX_BYTES ?? String(SHELF_DEFAULTS.maxBytes) },
    },
  });
  const port = Number(values.port);
  const maxBytes = Number(values['max-bytes']);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be 0..65535, got ${values.port}`);
  if (!Number.isSafeInteger(maxBytes) || maxBytes <= 0) throw new Error(`--max-bytes must be a positive integer, got ${values['max-bytes']}`);

  const logger = createConsoleLogger({}, { component: 'shelf' });
  const store = new FsBlobStore({ root: values.root });
  const shelf = await startShelf({ store, host: values.host, port, maxBytes, logger });
  logger.info('shelf listening', { url: shelf.url, root: store.root, maxBytes });
  console.log(shelf.url);

  const stop = async () => {
    logger.info('shelf stopping');
    await shelf.close();
    await store.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
}

main().catch((err: unknown) => {
  console.error((err as Error).message);
  process.exit(1);
});
