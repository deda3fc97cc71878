import { startCluster } from '../../src/bootstrap/index.js';
import { needHaproxy } from '../support/services.js';
import { describeDeploy } from './deploy-scenario.js';

// The one-process cluster with its router on the haproxy engine (`npm start -- --router-engine haproxy`): pushed apps
// answer through HAProxy. Skipped, saying why, without an haproxy binary; in CI a missing one fails.
if (await needHaproxy('git push deploys on a one-process cluster (haproxy router engine)')) {
  describeDeploy('process runtime, haproxy router engine', () => startCluster({ runtime: 'process', hostAddrs: ['127.0.0.2'], routerEngine: 'haproxy', ports: { controller: 0, router: 0, git: 0, shelf: 0 } }), 'hello');
}
