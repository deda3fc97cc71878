import { describe } from 'vitest';
import { needDocker, needEtcd } from '../support/services.js';
import { clusterScenarios } from './cluster-scenarios.js';

const services = (await needEtcd('scheduler on a real cluster (Docker runtime)')) && (await needDocker('scheduler on a real cluster (Docker runtime)'));

describe.runIf(services)('scheduler on 3 host agent processes, Docker runtime, etcd', () => {
  clusterScenarios('docker');
});
