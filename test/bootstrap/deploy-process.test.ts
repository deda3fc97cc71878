import { startCluster } from '../../src/bootstrap/index.js';
import { describeDeploy } from './deploy-scenario.js';

describeDeploy('process runtime', () => startCluster({ runtime: 'process', hostAddrs: ['127.0.0.2'], ports: { controller: 0, router: 0, git: 0, shelf: 0 } }), 'hello');
