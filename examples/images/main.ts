/**
 * Build the flynn-ts images locally, with no registry: the slim runtime image (node + busybox, no
 * network needed) and the stack image (a Debian root filesystem made by mmdebstrap from this
 * machine's apt sources, with the host's node, npm and corepack).
 *
 *   tsx examples/images/main.ts build [--only runtime|stack|postgres [--name NAME]] [--with PKG,PKG] [--force]
 *
 * `--only postgres` builds the postgres appliance's image: the stack with Debian's `postgresql`
 * (`flynn-ts/stack-postgresql`), which the default build leaves out.
 *
 * Without --force an image already present under its versioned name is kept. Progress goes to
 * stderr, one result line per image (`name id size time`) to stdout.
 */
import { FlynnError } from '../../src/common/errors.js';
import { createConsoleLogger } from '../../src/common/logger.js';
import { buildRuntimeImage, ensureRuntimeImage } from '../../src/host/runtime-image.js';
import { buildStackImage, ensureStackImage } from '../../src/host/stack-image.js';
import { POSTGRES_IMAGE_PACKAGES } from '../../src/controller/postgres-provider.js';
import { parseCli } from '../shared/cli-args.js';

const cli = parseCli({
  name: 'images',
  usage: 'npm run images -- [flags]   (or: node --import tsx examples/images/main.ts build [flags])',
  summary: 'Build the flynn-ts images locally: the runtime image (node + busybox) and the stack image\n(Debian made by mmdebstrap from this machine\'s apt sources, with node/npm/corepack).',
  positionals: true,
  flags: {
    only: { type: 'string', value: 'runtime|stack|postgres', help: 'build only this image (default: runtime and stack, runtime first; postgres: the stack with postgresql, for `flynn resource add postgres`)' },
    name: { type: 'string', value: 'NAME', help: 'image name (with --only; default: <repo>:<version>-<recipe hash>, <repo>:latest tagged too)' },
    force: { type: 'boolean', help: 'build even when an image is already there under its name' },
    with: { type: 'string', value: 'PKG,PKG', help: 'a stack variant with extra Debian packages (e.g. golang-go for Go apps), named flynn-ts/stack-<packages>' },
  },
});
const { positionals, values } = cli;
if (positionals.length !== 1 || positionals[0] !== 'build') cli.fail(`the only command is build, got ${JSON.stringify(positionals.join(' '))}`);
const only = values.only === undefined ? undefined : cli.oneOf('only', ['runtime', 'stack', 'postgres'] as const);
if (values.name !== undefined && only === undefined) cli.fail('--name needs --only runtime, stack or postgres');

const images = {
  runtime: { build: buildRuntimeImage, ensure: ensureRuntimeImage },
  stack: { build: buildStackImage, ensure: ensureStackImage },
  postgres: { build: buildStackImage, ensure: ensureStackImage },
};

async function main(): Promise<void> {
  for (const which of only ? [only] : (['runtime', 'stack'] as const)) {
    const log = createConsoleLogger({}, { component: `images ${which}` });
    const extraPackages = which === 'postgres' ? [...POSTGRES_IMAGE_PACKAGES] : which === 'stack' && values.with !== undefined ? values.with.split(',').map((p) => p.trim()).filter(Boolean) : undefined;
    const opts = { onProgress: (line: string) => log.info(line), ...(values.name === undefined ? {} : { name: values.name }), ...(extraPackages ? { extraPackages } : {}) };
    const started = performance.now();
    const image = values.force ? await images[which].build(opts) : await images[which].ensure(opts);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(`${image.name} ${image.id} ${(image.sizeBytes / 1e6).toFixed(1)}MB ${seconds}s`);
  }
}

main().catch((err: unknown) => {
  if (err instanceof FlynnError && err.code === 'FLYNN_ERR_HOST_DOCKER_UNAVAILABLE') {
    console.error(`error: ${err.message} — start Docker (\`sudo systemctl start docker\`, or \`sudo dockerd &\`) or set DOCKER_HOST`);
  } else {
    console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
  }
  process.exit(1);
});
