import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Dockerode from 'dockerode';
import { describe, expect, it } from 'vitest';
import { buildSlug } from '../../src/slug/builder.js';
import { ensureRuntimeImage } from '../../src/host/runtime-image.js';
import { DockerBuildExecutor } from '../../src/slug/docker-executor.js';
import { describeBuilds } from './build-suite.js';
import { removeTestContainers, runSlugInDocker, slugContents, sourceTar, startTestShelf, TEST_LABELS, writeBuildpack } from './helpers.js';
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

describe.runIf(await needDocker('slug build limits on Docker'))('Docker build limits', () => {
  it('kills a build past its memory limit and says so, storing nothing', async () => {
    await ensureRuntimeImage({ docker });
    const pack = await mkdtemp(path.join(tmpdir(), 'flynn-hungry-pack-'));
    const shelf = await startTestShelf(HOST_IP);
    try {
      await writeBuildpack(pack, {
        detect: '#!/bin/sh\necho Hungry\n',
        compile: '#!/bin/sh\necho eating memory\nnode -e "const a = []; for (;;) a.push(Buffer.alloc(1 << 20, 1))"\n',
        release: '#!/bin/sh\n',
      });
      const err = await buildSlug({
        source: await sourceTar('node-hello'),
        app: 'hungry',
        env: { BUILDPACK_URL: pack },
        executor: new DockerBuildExecutor({ docker, labels: TEST_LABELS }),
        shelf: shelf.client,
        memoryBytes: 64 * 1024 * 1024,
        timeoutMs: 60_000,
      }).catch((e: unknown) => e);
      expect(err).toMatchObject({ step: expect.stringMatching(/^compile /), code: 'FLYNN_ERR_SLUG_BUILD_FAILED' });
      expect((err as Error).message).toContain('memory limit');
      expect(await shelf.client.list('/')).toEqual([]);
    } finally {
      await shelf.close();
      await rm(pack, { recursive: true, force: true });
    }
  });
});

describe.runIf(await needDocker('unprivileged builds on Docker'))('Docker builds run unprivileged', () => {
  it('runs the build as uid 1000 with no capabilities, able to write its build, cache and home dirs and read its env', async () => {
    await ensureRuntimeImage({ docker });
    const pack = await mkdtemp(path.join(tmpdir(), 'flynn-uid-pack-'));
    const shelf = await startTestShelf(HOST_IP);
    try {
      await writeBuildpack(pack, {
        detect: '#!/bin/sh\necho Uid\n',
        compile: '#!/bin/sh\nset -e\necho "uid=$(id -u) caps=$(grep CapEff /proc/self/status | tr -d "\\t")"\necho built > "$1/built.txt"\necho cached > "$2/cached.txt"\necho home > "$HOME/home.txt"\necho "secret=$(cat "$3/SECRET")"\n',
        release: '#!/bin/sh\necho "--- {}"\n',
      });
      const lines: string[] = [];
      const result = await buildSlug({
        source: await sourceTar('node-hello'),
        app: 'uid',
        env: { BUILDPACK_URL: pack, SECRET: 's3cret' },
        executor: new DockerBuildExecutor({ docker, labels: TEST_LABELS }),
        shelf: shelf.client,
        onOutput: (line) => lines.push(line),
        timeoutMs: 60_000,
      });
      expect(lines).toContain('uid=1000 caps=CapEff:0000000000000000');
      expect(lines).toContain('secret=s3cret');
      const { names } = await slugContents(shelf.client, result.slugPath);
      expect(names).toContain('built.txt');
    } finally {
      await shelf.close();
      await rm(pack, { recursive: true, force: true });
    }
  });
});
