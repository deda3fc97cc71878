/**
 * A child process that owns one registration: `node [--import tsx] owner-process.(ts|js) <config json> <register options json>`.
 * It registers through `createDiscovery(config)`, prints `{"id":...,"index":...}` on one line and
 * keeps heartbeating until it is killed. The conformance suite SIGKILLs it to prove that an
 * instance whose owner dies without unregistering disappears within its TTL.
 */
import { createDiscovery, type DiscoveryConfig } from '../create.js';
import type { RegisterOptions } from '../types.js';

const [configJson, optionsJson] = process.argv.slice(2);
if (configJson === undefined || optionsJson === undefined) {
  process.stderr.write('usage: owner-process <config json> <register options json>\n');
  process.exit(2);
}
const discovery = createDiscovery(JSON.parse(configJson) as DiscoveryConfig);
const registration = await discovery.register(JSON.parse(optionsJson) as RegisterOptions);
process.stdout.write(JSON.stringify({ id: registration.instance.id, index: registration.instance.index }) + '\n');
setInterval(() => {}, 60_000); // stay alive until killed
