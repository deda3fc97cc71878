/**
 * Run shelf, the blob store, as a daemon on a filesystem directory.
 *
 *   tsx examples/shelf/main.ts [--root DIR] [--host 127.0.0.1] [--port 0] [--max-bytes 1073741824]
 *
 * Env twins (`--help`): SHELF_ROOT, SHELF_HOST, SHELF_PORT, SHELF_MAX_BYTES (flags win). Prints the URL on stdout
 * and stops cleanly on SIGINT / SIGTERM.
 *
 *   curl -T slug.tgz http://127.0.0.1:PORT/slugs/app/1.tgz
 *   curl -r 0-99 http://127.0.0.1:PORT/slugs/app/1.tgz
 */
import { createConsoleLogger } from '../../src/common/logger.js';
import { FsBlobStore, SHELF_DEFAULTS, startShelf } from '../../src/shelf/index.js';
import { listenFailure, parseCli } from '../shared/cli-args.js';

async function main(): Promise<void> {
  const cli = parseCli({
    name: 'shelf',
    usage: 'node --import tsx examples/shelf/main.ts [flags]',
    summary: 'Shelf, the blob store, as a daemon on a filesystem directory. Prints its URL on stdout.',
    flags: {
      root: { type: 'string', value: 'DIR', env: 'SHELF_ROOT', default: '/var/lib/flynn-ts/shelf', help: 'where blobs are kept' },
      host: { type: 'string', value: 'IP', env: 'SHELF_HOST', default: SHELF_DEFAULTS.host, help: 'listen address' },
      port: { type: 'string', value: 'N', env: 'SHELF_PORT', default: '0', help: 'listen port (0 = any free port)' },
      'max-bytes': { type: 'string', value: 'BYTES', env: 'SHELF_MAX_BYTES', default: String(SHELF_DEFAULTS.maxBytes), help: 'largest blob accepted' },
    },
  });
  const { values } = cli;
  const port = cli.port('port');
  const maxBytes = cli.integer('max-bytes', 1) as number;

  const logger = createConsoleLogger({}, { component: 'shelf' });
  const store = new FsBlobStore({ root: values.root });
  const shelf = await startShelf({ store, host: values.host, port, maxBytes, logger }).catch(async (err: unknown) => {
    await store.close();
    throw new Error(listenFailure(err, 'shelf', `${values.host}:${port}`, '--port N (0 = any free port)') ?? (err as Error).message, { cause: err });
  });
  // Before the ready line: whoever waits for it may signal at once.
  const stop = async () => {
    logger.info('shelf stopping');
    await shelf.close();
    await store.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
  logger.info('shelf listening', { url: shelf.url, root: store.root, maxBytes });
  console.log(shelf.url);
}

main().catch((err: unknown) => {
  console.error(`shelf: ${(err as Error).message}`);
  process.exit(1);
});
