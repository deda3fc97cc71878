import { spawnSync } from 'node:child_process';
import { describe } from 'vitest';
import { startCluster } from '../../src/bootstrap/index.js';
import { describeDeploy } from './deploy-scenario.js';

// The one-process cluster with its router on the haproxy engine (`npm start -- --router-engine haproxy`): pushed apps
// answer through HAProxy. Skipped without an haproxy binary, except in CI.
const haproxy = process.env.CI === 'true' || spawnSync('haproxy', ['-v']).status === 0;
if (haproxy) {
  describeDeploy('process runtime, haproxy router engine', () => startCluster({ runtime: 'process', hostAddrs: ['127.0.0.2'], routerEngine: 'haproxy', ports: { controller: 0, router: 0, git: 0, shelf: 0 } }), 'hello');
} else describe.skip('git push deploys on a one-process cluster (haproxy router engine): no haproxy binary', () => {});
