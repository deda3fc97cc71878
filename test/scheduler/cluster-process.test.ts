import { describe } from 'vitest';
import { needEtcd } from '../support/services.js';
import { clusterScenarios } from './cluster-scenarios.js';

describe.runIf(await needEtcd('scheduler on a real cluster (process runtime)'))('scheduler on 3 host agent processes, process runtime, etcd', () => {
  clusterScenarios('process');
});
