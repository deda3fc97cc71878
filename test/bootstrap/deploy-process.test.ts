import { describeDeploy } from './deploy-scenario.js';

describeDeploy('process', { runtime: 'process', hostAddrs: ['127.0.0.2'] }, 'hello');
