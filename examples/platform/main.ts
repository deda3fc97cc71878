/**
 * The platform daemon for multi-machine use: scheduler, shelf, controller (etcd store), router and
 * git receiver on etcd discovery, with no host agent of its own — run `examples/host/main.ts
 * --discovery etcd` on each machine and they join through etcd. A flag front-end over the same
 * bootstrap as examples/bootstrap/main.ts (`--manifest FILE` uses a manifest instead of flags).
 *
 *   CONTROLLER_KEY=secret npx tsx examples/platform/main.ts --etcd http://127.0.0.1:2379 [--prefix /flynn-ts]
 *     [--host 127.0.0.1] [--data-dir DIR] [--domain D] [--build docker|process|auto]
 *     [--controller-port 8081] [--router-port 8080] [--git-port 2222] [--shelf-port 8082]
 *     [--wait-hosts 0] [--json]
 *   npx tsx examples/platform/main.ts --manifest examples/bootstrap/manifest.yaml
 *
 * Env twins: ETCD_ENDPOINTS, FLYNN_ETCD_PREFIX, FLYNN_DATA_DIR, FLYNN_DOMAIN. Shelf must be reachable
 * from every host at its URL (the hosts download slugs from it).
 */
import { parseArgs } from 'node:util';
import { loadManifest, validateManifest, type BootstrapManifest } from '../../src/bootstrap/index.js';
import { runBootstrap } from '../bootstrap/run.js';

const { values } = parseArgs({
  options: {
    manifest: { type: 'string' },
    etcd: { type: 'string', default: process.env.ETCD_ENDPOINTS ?? 'http://127.0.0.1:2379' },
    prefix: { type: 'string', default: process.env.FLYNN_ETCD_PREFIX ?? '/flynn-ts' },
    host: { type: 'string', default: '127.0.0.1' },
    'data-dir': { type: 'string', default: process.env.FLYNN_DATA_DIR },
    domain: { type: 'string', default: process.env.FLYNN_DOMAIN ?? 'flynn.local' },
    build: { type: 'string', default: 'auto' },
    'controller-port': { type: 'string', default: '8081' },
    'router-port': { type: 'string', default: '8080' },
    'git-port': { type: 'string', default: '2222' },
    'shelf-port': { type: 'string', default: '8082' },
    'wait-hosts': { type: 'string', default: '0' },
    json: { type: 'boolean', default: false },
  },
});
function fail(msg: string): never {
  console.error(`platform: ${msg}`);
  process.exit(2);
}

let manifest: BootstrapManifest;
if (values.manifest) {
  manifest = await loadManifest(values.manifest, { env: process.env }).catch((err: Error) => fail(err.message));
} else {
  const key = process.env.CONTROLLER_KEY ?? fail('set CONTROLLER_KEY to the cluster key');
  // Flags are strings; the manifest check names the flag's field when one is wrong.
  const num = (v: string | undefined) => (v !== undefined && /^\d+$/.test(v) ? Number(v) : v);
  try {
    manifest = validateManifest(
      {
        discovery: { backend: 'etcd', endpoints: values.etcd.split(',').map((s) => s.trim()), prefix: values.prefix },
        key,
        listen: values.host,
        domain: values.domain,
        build: values.build,
        dataDir: values['data-dir'],
        waitHosts: { min: num(values['wait-hosts']) },
        controller: { port: num(values['controller-port']), store: { backend: 'etcd', prefix: `${values.prefix}/controller/` } },
        router: { port: num(values['router-port']) },
        git: { port: num(values['git-port']) },
        shelf: { port: num(values['shelf-port']) },
      },
      { interpolate: false },
    );
  } catch (err) {
    fail((err as Error).message.replace('invalid bootstrap manifest', 'invalid flags'));
  }
}
await runBootstrap(manifest, { name: 'platform', json: values.json });
