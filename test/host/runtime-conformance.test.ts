import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { DockerRuntime } from '../../src/host/docker-runtime.js';
import { ProcessRuntime } from '../../src/host/process-runtime.js';
import { describeRuntime } from '../../src/host/testing/runtime-conformance.js';
import { needDocker } from '../support/services.js';
import { removeTestContainers, TEST_LABELS } from './support.js';

const run = randomUUID().slice(0, 8);
const baseDir = await mkdtemp(join(tmpdir(), 'flynn-ts-proc-'));
afterAll(async () => {
  await rm(baseDir, { recursive: true, force: true });
  await removeTestContainers(run);
});

describeRuntime('process', () => new ProcessRuntime({ baseDir }));

if (await needDocker('host docker runtime conformance')) {
  describeRuntime('docker', () => new DockerRuntime({ labels: TEST_LABELS(run) }));
}
