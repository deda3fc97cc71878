/**
 * Build the flynn-ts runtime image locally, with no registry and no network.
 *
 *   tsx examples/images/main.ts build [--name NAME] [--force]
 *
 * Without --force an image already present under NAME is kept. Progress goes to stderr, the
 * result (`name id size time`) to stdout.
 */
import { parseArgs } from 'node:util';
import { FlynnError } from '../../src/common/errors.js';
import { createConsoleLogger } from '../../src/common/logger.js';
import { buildRuntimeImage, ensureRuntimeImage, RUNTIME_IMAGE_DEFAULTS } from '../../src/host/runtime-image.js';

const USAGE = 'usage: tsx examples/images/main.ts build [--name NAME] [--force]';

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: { name: { type: 'string' }, force: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) return void console.log(`${USAGE}\ndefault name: ${RUNTIME_IMAGE_DEFAULTS.name}`);
  if (positionals.length !== 1 || positionals[0] !== 'build') throw new Error(USAGE);

  const log = createConsoleLogger({}, { component: 'images' });
  const opts = { name: values.name, onProgress: (line: string) => log.info(line) };
  const started = performance.now();
  const image = values.force ? await buildRuntimeImage(opts) : await ensureRuntimeImage(opts);
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`${image.name} ${image.id} ${(image.sizeBytes / 1e6).toFixed(1)}MB ${seconds}s`);
}

main().catch((err: unknown) => {
  if (err instanceof FlynnError && err.code === 'FLYNN_ERR_HOST_DOCKER_UNAVAILABLE') {
    console.error(`error: ${err.message} — start Docker (\`sudo systemctl start docker\`, or \`sudo dockerd &\`) or set DOCKER_HOST`);
  } else {
    console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
  }
  process.exit(1);
});
