import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureRuntimeImage } from '../../src/host/runtime-image.js';
import { prepareSlugBuild } from '../../src/slug/build-preparation.js';
import { buildSlug } from '../../src/slug/builder.js';
import { DockerBuildExecutor } from '../../src/slug/docker-executor.js';
import { BuildFailedError } from '../../src/slug/errors.js';
import { removeTestContainers, sourceTar, startTestShelf, TEST_LABELS, type TestShelf } from './helpers.js';
import { needDocker } from '../support/services.js';

const docker = new Dockerode();
const MiB = 1024 * 1024;

/** This run's build containers, with their state. */
async function buildContainers(): Promise<{ id: string; state: string }[]> {
  const list = await docker.listContainers({ all: true, filters: { label: [`io.flynn-ts.test.slug-run=${TEST_LABELS['io.flynn-ts.test.slug-run']}`, 'io.flynn-ts.role=build'] } });
  return list.map((c) => ({ id: c.Id, state: c.State }));
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe.runIf(await needDocker('prepared slug builds on Docker'))('builds prepared ahead on Docker', () => {
  let shelf: TestShelf;
  let work: string;
  let executor: DockerBuildExecutor;

  beforeAll(async () => {
    await ensureRuntimeImage({ docker });
    shelf = await startTestShelf('127.0.0.5');
    work = await mkdtemp(path.join(tmpdir(), 'flynn-prepared-'));
    executor = new DockerBuildExecutor({ docker, labels: TEST_LABELS });
  });
  afterAll(async () => {
    await removeTestContainers(docker);
    await shelf?.close();
    await rm(work, { recursive: true, force: true });
  });

  it('runs the build in the container started before the source came, then removes it and its scratch dir', async () => {
    const preparation = prepareSlugBuild({ app: 'early', executor, workDir: work, memoryBytes: 512 * MiB });
    const started = await until('the prepared container to run', async () => (await buildContainers()).find((c) => c.state === 'running'));
    const lines: string[] = [];
    const result = await buildSlug({ source: await sourceTar('node-hello'), app: 'early', executor, shelf: shelf.client, workDir: work, memoryBytes: 512 * MiB, preparation, onOutput: (l) => lines.push(l) });
    expect(result.processTypes.web).toBe('node server.js');
    expect(lines.join('\n')).toMatch(/Node\.js app detected/);
    // The build ran in that very container: no other was created, and it is gone now.
    const info = await docker.getContainer(started.id).inspect().catch((e: { statusCode?: number }) => e.statusCode);
    expect(info).toBe(404);
    expect(await buildContainers()).toEqual([]);
    expect(await readdir(work)).toEqual([]);
    await preparation.discard(); // a no-op once the build took it
  });

  it('gives each prepared container one job: a second build with the same preparation starts a fresh one', async () => {
    const preparation = prepareSlugBuild({ app: 'once', executor, workDir: work });
    await buildSlug({ source: await sourceTar('node-hello'), app: 'once', executor, shelf: shelf.client, workDir: work, preparation, cache: false });
    const lines: string[] = [];
    const again = await buildSlug({ source: await sourceTar('node-hello'), app: 'once', executor, shelf: shelf.client, workDir: work, preparation, cache: false, onOutput: (l) => lines.push(l) });
    expect(again.processTypes.web).toBe('node server.js');
    expect(await buildContainers()).toEqual([]);
  });

  it('does not use a preparation made for other options: the build runs in a fresh container and both are removed', async () => {
    const preparation = prepareSlugBuild({ app: 'other', executor, workDir: work, memoryBytes: 256 * MiB });
    await until('the prepared container to run', async () => (await buildContainers()).find((c) => c.state === 'running'));
    const result = await buildSlug({ source: await sourceTar('node-hello'), app: 'other', executor, shelf: shelf.client, workDir: work, memoryBytes: 300 * MiB, preparation });
    expect(result.processTypes.web).toBe('node server.js');
    expect(await buildContainers()).toEqual([]);
    expect(await readdir(work)).toEqual([]);
  });

  it('starts a fresh container when the prepared one was removed while it waited', async () => {
    const preparation = prepareSlugBuild({ app: 'lost', executor, workDir: work });
    const waiting = await until('the prepared container to run', async () => (await buildContainers()).find((c) => c.state === 'running'));
    await docker.getContainer(waiting.id).remove({ force: true });
    const result = await buildSlug({ source: await sourceTar('node-hello'), app: 'lost', executor, shelf: shelf.client, workDir: work, preparation, cache: false });
    expect(result.processTypes.web).toBe('node server.js');
    expect(await buildContainers()).toEqual([]);
  });

  it('removes the prepared container of a build that fails, and stores nothing', async () => {
    const preparation = prepareSlugBuild({ app: 'broken', executor, workDir: work });
    const err = await buildSlug({ source: await sourceTar('build-fails'), app: 'broken', executor, shelf: shelf.client, workDir: work, preparation }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildFailedError);
    expect(await buildContainers()).toEqual([]);
    expect(await readdir(work)).toEqual([]);
    expect(await shelf.client.list('/slugs/broken/').catch(() => [])).toEqual([]);
  });

  it('removes a preparation that is discarded unused, container and scratch dir', async () => {
    const preparation = prepareSlugBuild({ app: 'unused', executor, workDir: work });
    await until('the prepared container to run', async () => (await buildContainers()).find((c) => c.state === 'running'));
    await preparation.discard();
    await preparation.discard();
    expect(await buildContainers()).toEqual([]);
    expect(await readdir(work)).toEqual([]);
  });

  it('refuses an invalid app name before preparing anything', () => {
    expect(() => prepareSlugBuild({ app: 'Not_Valid', executor })).toThrow(/invalid app name/);
  });
});
