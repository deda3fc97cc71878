// Builds have network by default, as on Heroku: a build container on the default (bridge) network
// installs a dependency from the npm registry through the host's CA bundle; `network: 'none'`
// still fails with the buildpack's "no network" message. Runs on the stack image.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSlug } from '../../src/slug/builder.js';
import { DockerBuildExecutor } from '../../src/slug/docker-executor.js';
import { needStackImage } from '../host/stack-support.js';
import { removeTestContainers, slugContents, sourceTar, startTestShelf, TEST_LABELS, type TestShelf, writeBuildpack } from './helpers.js';

const HOST_IP = '127.0.0.5';
const docker = new Dockerode();
// `ms` is tiny and has no dependencies of its own: one registry round trip.
const WITH_DEP = JSON.stringify({ name: 'with-dep', version: '1.0.0', private: true, type: 'module', dependencies: { ms: '2.1.3' } });

const stack = await needStackImage('slug builds with network');

describe.runIf(stack)('builds with network on the stack image', () => {
  let shelf: TestShelf;
  const lines: string[] = [];
  const build = (app: string, executor: DockerBuildExecutor, env: Record<string, string> = {}, extra: Record<string, string> = { 'package.json': WITH_DEP }) =>
    sourceTar('node-hello', extra).then((source) => buildSlug({ source, app, env, executor, shelf: shelf.client, cache: false, timeoutMs: 120_000, onOutput: (l) => lines.push(l) }));

  beforeAll(async () => {
    shelf = await startTestShelf(HOST_IP);
  });
  afterAll(async () => {
    await removeTestContainers(docker);
    await shelf?.close();
  });

  it('installs a dependency from the npm registry on the default network', async () => {
    lines.length = 0;
    const started = performance.now();
    const result = await build('net-dep', new DockerBuildExecutor({ docker, image: stack!.name, labels: TEST_LABELS }));
    console.log(`[stack] build with ms from the registry: ${Math.round(performance.now() - started)} ms`);
    const { names } = await slugContents(shelf.client, result.slugPath);
    expect(names).toContain('node_modules/ms/package.json');
    expect(lines.join('\n')).not.toMatch(/no network/i);
  });

  it('fails with the "no network" message when builds get network none', async () => {
    lines.length = 0;
    const err = await build('net-none', new DockerBuildExecutor({ docker, image: stack!.name, network: 'none', labels: TEST_LABELS })).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'FLYNN_ERR_SLUG_BUILD_FAILED' });
    expect(lines.join('\n')).toMatch(/no network access/);
  });

  it('gives builds $STACK, the CA bundle and the executor env, and FLYNN_NPM_OFFLINE only with network none', async () => {
    const pack = await mkdtemp(path.join(tmpdir(), 'flynn-env-pack-'));
    try {
      await writeBuildpack(pack, {
        detect: '#!/bin/sh\necho Env\n',
        compile: '#!/bin/sh\necho "seen STACK=$STACK offline=${FLYNN_NPM_OFFLINE:-unset} proxy=${HTTPS_PROXY:-unset} ca=$NODE_EXTRA_CA_CERTS"\n',
        release: '#!/bin/sh\n',
      });
      const seen = async (executor: DockerBuildExecutor) => {
        lines.length = 0;
        await build('net-env', executor, { BUILDPACK_URL: pack }, {});
        return lines.find((l) => l.includes('seen STACK='))?.trim();
      };
      const proxy = { HTTPS_PROXY: 'http://proxy.invalid:3128' };
      expect(await seen(new DockerBuildExecutor({ docker, image: stack!.name, labels: TEST_LABELS, env: proxy }))).toBe(
        `seen STACK=${stack!.stack} offline=unset proxy=http://proxy.invalid:3128 ca=/etc/ssl/certs/ca-certificates.crt`,
      );
      expect(await seen(new DockerBuildExecutor({ docker, image: stack!.name, labels: TEST_LABELS, network: 'none', stack: 'other-stack' }))).toBe(
        'seen STACK=other-stack offline=1 proxy=unset ca=/etc/ssl/certs/ca-certificates.crt',
      );
    } finally {
      await rm(pack, { recursive: true, force: true });
    }
  });
});
