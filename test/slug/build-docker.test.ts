import Dockerode from 'dockerode';
import { describe, expect } from 'vitest';
import { ensureRuntimeImage } from '../../src/host/runtime-image.js';
import { DockerBuildExecutor } from '../../src/slug/docker-executor.js';
import { describeBuilds } from './build-suite.js';
import { removeTestContainers, runSlugInDocker, TEST_LABELS } from './helpers.js';
import { needDocker } from '../support/services.js';

const HOST_IP = '127.0.0.5';
const docker = new Dockerode();

describe.runIf(await needDocker('slug builds on Docker'))('Docker', () => {
  describeBuilds('docker', {
    hostIp: HOST_IP,
    runsProcfileWeb: true,
    async executor() {
      await ensureRuntimeImage({ docker });
      return new DockerBuildExecutor({ docker, labels: TEST_LABELS });
    },
    run: ({ shelf, slugPath, type, env }) => runSlugInDocker(docker, { client: shelf.client, slugPath, type, hostIp: HOST_IP, ...(env ? { env } : {}) }),
    async afterAllCheck() {
      // Build containers are removed by the executor; app containers by the tests. None may be left.
      const left = await docker.listContainers({ all: true, filters: { label: [`io.flynn-ts.test.slug-run=${TEST_LABELS['io.flynn-ts.test.slug-run']}`] } });
      await removeTestContainers(docker);
      expect(left.map((c) => c.Labels['io.flynn-ts.role'])).toEqual([]);
    },
  });
});
