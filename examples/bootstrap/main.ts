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
import { parseArgs } from 'node:util';
import { loadManifest } from '../../src/bootstrap/index.js';
import { runBootstrap } from './run.js';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } } });
if (values.help || positionals.length !== 1) {
  (values.help ? console.log : console.error)('usage: tsx examples/bootstrap/main.ts MANIFEST.yaml|MANIFEST.json [--json]');
  process.exit(values.help ? 0 : 2);
}
const manifest = await loadManifest(positionals[0] as string, { env: process.env }).catch((err: Error) => {
  console.error(`bootstrap: ${err.message}`);
  process.exit(2);
});
await runBootstrap(manifest, { name: 'bootstrap', json: values.json, showKey: manifest.key === undefined });
