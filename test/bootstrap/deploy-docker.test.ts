import { randomUUID } from 'node:crypto';
import { afterAll } from 'vitest';
import { startCluster } from '../../src/bootstrap/index.js';
import { needDocker } from '../support/services.js';
import { removeTestContainers, TEST_LABELS } from '../host/support.js';
import { describeDeploy } from './deploy-scenario.js';

const run = randomUUID().slice(0, 6);
afterAll(() => removeTestContainers(run));

if (await needDocker('git push deploys on docker')) {
  describeDeploy('docker runtime', () => startCluster({ runtime: 'docker', hostAddrs: ['127.0.0.3'], labels: TEST_LABELS(run), ports: { controller: 0, router: 0, git: 0, shelf: 0 } }), 'hello');
}
