/**
 * Build the flynn-ts runtime image locally, with no registry and no network.
 *
 *   tsx examples/images/main.ts build [--name NAME] [--force]
 *
 * Without --force an image already present under NAME is kept. Progress goes to stderr, the
 * result (`name id size time`) to stdout.
 */
import { FlynnError } from '../../src/common/errors.js';
import { createConsoleLogger } from '../../src/common/logger.js';
import { buildRuntimeImage, ensureRuntimeImage, RUNTIME_IMAGE_DEFAULTS } from '../../src/host/runtime-image.js';
import { parseCli } from '../shared/cli-args.js';

async function main(): Promise<void> {
  const cli = parseCli({
    name: 'images',
    usage: 'npm run images -- [flags]   (or: node --import tsx examples/images/main.ts build [flags])',
    summary: 'Build the flynn-ts runtime image locally (node + busybox), with no registry and no network.',
    positionals: true,
    flags: {
      name: { type: 'string', value: 'NAME', default: RUNTIME_IMAGE_DEFAULTS.name, help: 'image name' },
      force: { type: 'boolean', help: 'build even when an image is already there under NAME' },
    },
  });
  const { positionals, values } = cli;
  if (positionals.length !== 1 || positionals[0] !== 'build') cli.fail(`the only command is build, got ${JSON.stringify(positionals.join(' '))}`);

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
