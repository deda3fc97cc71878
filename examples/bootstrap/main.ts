/**
 * flynn-bootstrap: start layer 1 (shelf, scheduler, router, git receiver, controller) from a
 * manifest onto a running layer 0 (discovery + host agents started with examples/host/main.ts).
 *
 *   CONTROLLER_KEY=secret npx tsx examples/bootstrap/main.ts examples/bootstrap/manifest.yaml [--json]
 *
 * `${VAR}` in the manifest is read from the environment. `--json` prints one JSON object per step
 * and `{"step":"ready",controllerUrl,routerUrl,gitHost,gitFingerprint,shelfUrl,...}` last.
 * Exits 1 when bootstrap fails, 2 on a bad manifest or usage; SIGINT/SIGTERM close layer 1.
 */
import { loadManifest } from '../../src/bootstrap/index.js';
import { parseCli } from '../shared/cli-args.js';
import { runBootstrap } from './run.js';

const cli = parseCli({
  name: 'bootstrap',
  usage: 'npm run bootstrap -- MANIFEST.yaml|MANIFEST.json [--json]   (or: node --import tsx examples/bootstrap/main.ts ...)',
  summary: 'Start layer 1 (shelf, scheduler, router, git receiver, controller) from a manifest onto a running\nlayer 0 (discovery + host agents, examples/host/main.ts). Exit 1 when bootstrap fails, 2 on a bad\nmanifest or command line.',
  positionals: true,
  flags: { json: { type: 'boolean', help: 'one JSON object per step instead of text; `ready` carries the URLs' } },
  notes: 'environment: ${VAR} in the manifest is read from the environment (e.g. ${CONTROLLER_KEY}).\nPorts are set in the manifest (controller.port, router.port, git.port, shelf.port; 0 = any free port).',
});
if (cli.positionals.length !== 1) cli.fail(cli.positionals.length === 0 ? 'give the manifest file' : `one manifest only, got ${cli.positionals.length}`);
const manifest = await loadManifest(cli.positionals[0] as string, { env: process.env }).catch((err: Error) => {
  console.error(`bootstrap: ${err.message}`);
  process.exit(2);
});
const inManifest = (field: string) => `${field}: N in the manifest`;
await runBootstrap(manifest, {
  name: 'bootstrap',
  json: cli.values.json,
  showKey: manifest.key === undefined,
  portHint: { controller: inManifest('controller.port'), router: inManifest('router.port'), git: inManifest('git.port'), shelf: inManifest('shelf.port') },
});
