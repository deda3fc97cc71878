/**
 * Providers and resources over a FakeCluster grid: the appliance's SQL jobs are recorded instead
 * of run (the Docker e2e runs them for real), so a failed provision can be made to fail at each
 * step and checked to leave nothing behind.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryStore, startController, ControllerClient, type Deployer, type ControllerHandle } from '../../src/controller/index.js';
import type { OneOffJobSpec, RunningJob } from '../../src/controller/jobs.js';
import { FakeCluster } from '../../src/controller/testing/index.js';
import type { RunOutput } from '../../src/controller/types.js';
import { KEY } from './harness.js';

/** A FakeCluster whose one-off jobs only record what SQL they were asked to run, and exit `status`. */
class SqlRecordingCluster extends FakeCluster {
  readonly sql: { statement: 'create' | 'drop'; name: string }[] = [];
  failCreate = false;

  async createVolume(): Promise<{ hostId: string }> {
    return { hostId: 'h1' };
  }

  override async runJob(spec: OneOffJobSpec): Promise<RunningJob> {
    const script = spec.cmd.join(' ');
    const statement = script.includes('CREATE ROLE') ? 'create' : 'drop';
    this.sql.push({ statement, name: spec.env.FLYNN_PG_NAME ?? '' });
    // The role's password travels in the env, never in the command line (which ends up in Docker labels).
    if (spec.env.FLYNN_PG_PASSWORD !== undefined) expect(script).not.toContain(spec.env.FLYNN_PG_PASSWORD);
    const failed = statement === 'create' && this.failCreate;
    const output = (async function* (): AsyncGenerator<RunOutput> {
      if (failed) yield { kind: 'output', stream: 'stderr', data: 'ERROR:  could not create database\n' };
      yield { kind: 'exit', status: failed ? 3 : 0 };
    })();
    return { id: 'job', output };
  }
}

/** Deploys at once unless `hold` is set: then they wait until `release()`. */
class HeldDeployer implements Deployer {
  private gate: Promise<void> | undefined;
  private open = () => {};
  hold(): void {
    this.gate = new Promise((resolve) => (this.open = resolve));
  }
  release(): void {
    this.open();
    this.gate = undefined;
  }
  async deploy(): Promise<void> {
    await this.gate;
  }
}

describe('providers and resources', () => {
  let controller: ControllerHandle | undefined;
  let client: ControllerClient | undefined;
  afterEach(async () => {
    await client?.close();
    await controller?.close();
  });

  async function start() {
    const store = new MemoryStore();
    const cluster = new SqlRecordingCluster({ store });
    const deployer = new HeldDeployer();
    controller = await startController({ key: KEY, store, jobs: cluster, deployer, host: '127.0.0.2' });
    client = new ControllerClient({ url: controller.url, key: KEY });
    return { client, cluster, deployer, store };
  }

  it('starts the appliance pinned to the volume’s host, with a generated superuser password, once', async () => {
    const { client, cluster } = await start();
    await client.createApp({ name: 'a' });
    await client.createApp({ name: 'b' });
    await client.addResource('postgres', 'a');
    await client.addResource('postgres', 'b');
    const pg = await client.getApp('postgres');
    expect(pg.meta['flynn-system']).toBe('postgres');
    const releases = await client.listReleases('postgres');
    expect(releases).toHaveLength(1);
    expect(releases[0]!.env.PGPASSWORD).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(releases[0]!.processes.postgres).toMatchObject({ host: 'h1', volumes: [{ name: 'postgres-data', target: '/data' }], alias: `postgres-${pg.id}.flynn` });
    const [ra, rb] = [(await client.getEnv('a')).DATABASE_URL, (await client.getEnv('b')).DATABASE_URL];
    expect(ra).not.toBe(rb);
    expect(cluster.sql.map((s) => s.statement)).toEqual(['create', 'create']);
  });

  it('a failed provision leaves no database, no record and no DATABASE_URL; the next add works', async () => {
    const { client, cluster, deployer } = await start();
    await client.createApp({ name: 'a' });
    cluster.failCreate = true;
    await expect(client.addResource('postgres', 'a')).rejects.toMatchObject({ status: 409, message: 'postgres: ERROR:  could not create database' });
    const [create, drop] = cluster.sql;
    expect(drop).toEqual({ statement: 'drop', name: create!.name });
    expect(await client.listResources('a')).toEqual([]);
    expect((await client.getEnv('a')).DATABASE_URL).toBeUndefined();

    // The app's release cannot be deployed (another deployment runs): the database made for it is dropped again.
    cluster.failCreate = false;
    cluster.sql.length = 0;
    deployer.hold();
    await client.setEnv('a', { OTHER: '1' });
    await expect(client.addResource('postgres', 'a')).rejects.toMatchObject({ status: 409, code: 'FLYNN_ERR_CONTROLLER_DEPLOY_IN_PROGRESS' });
    expect(cluster.sql.map((s) => s.statement)).toEqual(['create', 'drop']);
    expect(cluster.sql[1]!.name).toBe(cluster.sql[0]!.name);
    expect(await client.listResources('a')).toEqual([]);
    deployer.release();
    await controller!.deploymentSettled('a');
    expect((await client.getEnv('a')).DATABASE_URL).toBeUndefined();

    const added = await client.addResource('postgres', 'a');
    expect(await client.listResources()).toEqual([added.resource]);
  });

  it('deleting an app drops its database', async () => {
    const { client, cluster } = await start();
    await client.createApp({ name: 'gone' });
    const added = await client.addResource('postgres', 'gone');
    await client.deleteApp('gone');
    await expect.poll(() => cluster.sql.at(-1)).toEqual({ statement: 'drop', name: added.resource.meta.database });
    expect(await client.listResources()).toEqual([]);
  });
});
