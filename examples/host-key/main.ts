/**
 * Print the host key of a cluster: what host agents (examples/host/main.ts) need as
 * `FLYNN_HOST_KEY`, derived from the cluster key (docs/security.md). The cluster key itself never
 * has to be on a host. `--component discovery` prints discoverd's key (`DISCOVERD_KEY`).
 *
 *   CONTROLLER_KEY=secret npm run -s host-key [-- --component discovery]
 */
import { componentKey } from '../../src/common/http/key-auth.js';
import { parseCli } from '../shared/cli-args.js';

const cli = parseCli({
  name: 'host-key',
  usage: 'CONTROLLER_KEY=secret npm run -s host-key',
  summary: "Print the host agents' key (FLYNN_HOST_KEY) of the cluster whose key is CONTROLLER_KEY.",
  flags: { component: { type: 'string', value: 'host|discovery', default: 'host', help: 'whose key: the host agents\' or discoverd\'s' } },
  notes: 'environment without a flag:\n  CONTROLLER_KEY   the cluster key (required)',
});
const key = process.env.CONTROLLER_KEY || cli.fail('set CONTROLLER_KEY to the cluster key');
console.log(componentKey(key, cli.oneOf('component', ['host', 'discovery'] as const)));
