import { randomUUID } from 'node:crypto';
import { afterAll } from 'vitest';
import { DockerRuntime } from '../../src/host/docker-runtime.js';
import { needDocker } from '../support/services.js';
import { describeAgentScenarios } from './agent-scenarios.js';
import { removeTestContainers, TEST_LABELS } from './support.js';

const run = randomUUID().slice(0, 6);
afterAll(() => removeTestContainers(run));

if (await needDocker('host agent on docker')) {
  describeAgentScenarios('docker', () => new DockerRuntime({ labels: TEST_LABELS(run) }), run);
}
