/**
 * The postgres appliance end to end on Docker with real PostgreSQL: `resource add` makes a
 * database and sets DATABASE_URL, a Node app pushed with git reads and writes a table through it
 * with the `pg` client from npm and answers through the router; the data survives a restart of
 * the appliance's job and of the host agent; a dump restores into a second app's database; remove
 * drops the database; bad requests get clear 4xx errors.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestCluster, serverAddArgs, startCluster, type Cluster, type ClusterOptions } from '../../src/bootstrap/index.js';
import { POSTGRES_IMAGE_PACKAGES } from '../../src/controller/postgres-provider.js';
import { startHostAgent } from '../../src/host/start.js';
import { DockerRuntime } from '../../src/host/docker-runtime.js';
import { ensureStackImage } from '../../src/host/stack-image.js';
import { getVia, until } from '../bootstrap/deploy-scenario.js';
import { pusher } from '../bootstrap/pusher.js';
import { removeTestContainers } from '../host/support.js';
import { needDocker } from '../support/services.js';

const exec = promisify(execFile);
const MAIN = resolve('src/cli/main.ts');
const TSX = pathToFileURL(resolve('node_modules/tsx/dist/loader.mjs')).href;

if (await needDocker('the postgres appliance')) {
  await ensureStackImage({ extraPackages: [...POSTGRES_IMAGE_PACKAGES] });

  describe('flynn-postgres on Docker', () => {
    // Registered before the cluster's own hooks, so it runs after the cluster closed (after-hooks run in reverse): its ended containers go too.
    afterAll(async () => {
      if (ctx.cluster) await removeTestContainers(ctx.cluster.runId);
    });
    const { ctx, push } = pusher(() => createTestCluster({ runtime: 'docker' }));
    /** `flynn ARGS` through sh (redirections work); throws unless it exits with `code`. */
    const flynn = async (args: string, code = 0): Promise<{ stdout: string; stderr: string }> => {
      const env = { ...process.env, FLYNNRC: join(ctx.dir, 'flynnrc.json'), HOME: ctx.dir };
      if (!added) {
        await exec(process.execPath, ['--import', TSX, MAIN, ...serverAddArgs(ctx.cluster, 'test')], { env });
        added = true;
      }
      const r = await exec('sh', ['-c', `node --import ${TSX} ${MAIN} ${args}`], { env, cwd: ctx.dir }).then(
        (ok) => ({ ...ok, code: 0 }),
        (err: { code: number; stdout: string; stderr: string }) => err,
      );
      if (r.code !== code) throw new Error(`flynn ${args} exited ${r.code}, not ${code}: ${r.stderr}`);
      return { stdout: r.stdout, stderr: r.stderr };
    };
    let added = false;
    /** The host agent started in place of the cluster's own: closed before the cluster. */
    const restarted: (() => Promise<void>)[] = [];
    afterAll(async () => {
      for (const close of restarted) await close();
    });

    const notes = (app: string, path = '/') =>
      until(`${app} to answer through the router`, async () => {
        const r = await getVia(ctx.cluster.routerUrl, `${app}.${ctx.cluster.domain}`, path);
        return r.status === 200 ? r.body.trim() : undefined;
      }, 60_000);

    it('adds a database to an app, which reads and writes it through DATABASE_URL; the data survives restarts', async () => {
      const { client } = ctx.cluster;
      await client.createApp({ name: 'notes' });
      const added = await client.addResource('postgres', 'notes');
      expect(added.resource).toMatchObject({ provider: 'postgres', appName: 'notes', envVars: ['DATABASE_URL'] });
      expect((await client.getEnv('notes')).DATABASE_URL).toMatch(/^postgres:\/\/db_[0-9a-f]{16}:[^@]+@postgres-[0-9a-f-]+\.flynn:5432\/db_[0-9a-f]{16}$/);
      expect(await client.listResources('notes')).toEqual([added.resource]);

      const pushed = await push('pg-app', 'notes', { existing: true });
      expect(pushed.code, pushed.output).toBe(0);
      expect(await notes('notes', '/add?note=first')).toBe('notes: first');

      // The appliance's job restarts (on the host that has its volume) with the data.
      const [server] = await client.listJobs('postgres');
      expect(server).toBeDefined();
      await client.killJob('postgres', server!.id);
      await until('a new appliance job', async () => (await client.listJobs('postgres')).find((j) => j.id !== server!.id && j.state === 'up'), 60_000);
      expect(await notes('notes', '/add?note=second')).toBe('notes: first,second');

      // A new host agent (same host id and data dir) adopts the running appliance and keeps its volume.
      const old = ctx.cluster.hosts[0]!;
      const id = old.agent.id;
      await old.close();
      const runtime = new DockerRuntime({ labels: { 'io.flynn-ts.test': '1', 'io.flynn-ts.test-run': ctx.cluster.runId } });
      const again = await startHostAgent({ id, advertiseAddr: old.agent.advertiseAddr, discovery: ctx.cluster.discovery, runtime, key: ctx.cluster.hostAgentKey, volumesDir: join(ctx.cluster.dataDir, 'volumes'), stopGraceMs: 1000 });
      restarted.push(() => again.close(), () => runtime.close());
      expect((await again.agent.volumes.list()).map((v) => v.name)).toEqual(['postgres-data']);
      expect(again.agent.listJobs().filter((j) => j.app === server!.appId && j.state === 'up')).toHaveLength(1);
      expect(await notes('notes')).toBe('notes: first,second');
    }, 300_000);

    it('flynn resource add, pg dump > file, pg restore < file and pg psql: a copy of one app’s database in a second app’s', async () => {
      await ctx.cluster.client.createApp({ name: 'copy' });
      const added = await flynn('resource add postgres -a copy');
      expect(added.stdout).toMatch(/^Created postgres resource [0-9a-f-]{36} for copy: DATABASE_URL set\.\nCreated release v1 and deployed it\.\n$/);
      expect((await flynn('resources -a copy')).stdout).toMatch(/^ID +PROVIDER +APP +ENV +CREATED\n[0-9a-f-]{36} +postgres +copy +DATABASE_URL /);
      await flynn(`pg dump -a notes > ${join(ctx.dir, 'notes.sql')}`);
      expect(await readFile(join(ctx.dir, 'notes.sql'), 'utf8')).toContain('CREATE TABLE public.notes');
      await flynn(`pg restore -a copy < ${join(ctx.dir, 'notes.sql')}`);
      expect((await flynn(`pg psql -a copy -- -X -tA -c "SELECT string_agg(body, ',' ORDER BY id) FROM notes"`)).stdout).toBe('first,second\n');
      // The app's own role, not the superuser.
      expect((await flynn('pg psql -a copy -- -X -tA -c "SELECT current_user = current_database()"')).stdout).toBe('t\n');
    }, 120_000);

    it('flynn pg psql in a terminal (tmux): a psql prompt on the app’s database, \\q exits 0', async () => {
      await flynn('resources'); // writes $FLYNNRC (server-add) for the terminal's flynn
      const socket = `pg-${ctx.cluster.runId}`;
      const tmux = (...args: string[]) => exec('tmux', ['-L', socket, ...args]).then((r) => r.stdout, () => '');
      const statusFile = join(ctx.dir, 'psql-status');
      const cmd = `env FLYNNRC=${join(ctx.dir, 'flynnrc.json')} HOME=${ctx.dir} node --import ${TSX} ${MAIN} pg psql -a notes; echo $? > ${statusFile}; sleep 30`;
      await exec('tmux', ['-L', socket, 'new-session', '-d', '-s', 's', '-x', '100', '-y', '30', cmd]);
      try {
        const shows = (what: string, pattern: RegExp) =>
          until(what, async () => (pattern.test(await tmux('capture-pane', '-p', '-t', 's')) ? true : undefined), 60_000).catch(async (err: Error) =>
            Promise.reject(new Error(`${err.message}; the terminal shows:\n${await tmux('capture-pane', '-p', '-t', 's')}`)),
          );
        await shows('the psql prompt', /^db_[0-9a-f]{16}=>/m);
        // \\g runs the query: a trailing ';' would end the tmux command.
        await tmux('send-keys', '-t', 's', 'SELECT count(*) AS notes FROM notes \\g', 'Enter');
        await shows('the count', /^\s+2$/m);
        await tmux('send-keys', '-t', 's', '\\q', 'Enter');
        expect(await until('the exit status', () => readFile(statusFile, 'utf8').then((t) => t.trim(), () => undefined))).toBe('0');
      } finally {
        await tmux('kill-server');
      }
    }, 120_000);

    it('removes a resource: DATABASE_URL is unset and the database is dropped', async () => {
      const { client } = ctx.cluster;
      const [resource] = await client.listResources('copy');
      const database = resource!.meta.database!;
      expect((await flynn('resource remove postgres -a copy')).stdout).toContain(`Removed postgres resource ${resource!.id} of copy: DATABASE_URL unset, ${database} dropped.`);
      expect((await client.getEnv('copy')).DATABASE_URL).toBeUndefined();
      expect(await client.listResources('copy')).toEqual([]);
      // As the superuser (the appliance's own env): the database is gone, the other one stays.
      const session = client.run('postgres', ['psql', '-X', '-tA', '-c', 'SELECT datname FROM pg_database ORDER BY 1'], { stdin: '' });
      let out = '';
      for await (const c of session.output) out += c.data.toString();
      expect(await session.exit).toBe(0);
      expect(out).not.toContain(database);
      expect(out).toContain((await client.listResources('notes'))[0]!.meta.database);
    }, 120_000);

    it('answers bad requests with clear 4xx errors', async () => {
      const { client } = ctx.cluster;
      expect(await flynn('resource add postgres -a notes', 1)).toMatchObject({ stderr: expect.stringContaining('already has a postgres resource') });
      expect(await flynn('pg dump -a has-no-db', 1)).toMatchObject({ stderr: expect.stringContaining('no app named') });
      await expect(client.addResource('mysql', 'notes')).rejects.toMatchObject({ status: 404, code: 'FLYNN_ERR_CONTROLLER_PROVIDER_NOT_FOUND', message: expect.stringContaining('postgres') });
      await expect(client.addResource('postgres', 'notes')).rejects.toMatchObject({ status: 409, code: 'FLYNN_ERR_CONTROLLER_RESOURCE_EXISTS', message: expect.stringContaining('already has a postgres resource') });
      await expect(client.addResource('postgres', 'no-such-app')).rejects.toMatchObject({ status: 404 });
      await expect(client.addResource('postgres', 'postgres')).rejects.toMatchObject({ status: 409 });
      await expect(client.removeResource('postgres', 'no-such-id')).rejects.toMatchObject({ status: 404, code: 'FLYNN_ERR_CONTROLLER_RESOURCE_NOT_FOUND' });
      await client.createApp({ name: 'has-url' });
      await client.setEnv('has-url', { DATABASE_URL: 'postgres://elsewhere/db' });
      await expect(client.addResource('postgres', 'has-url')).rejects.toMatchObject({ status: 409, message: expect.stringContaining('DATABASE_URL') });
    }, 60_000);
  });

  describe('flynn-postgres across a platform restart', () => {
    const runId = randomUUID().slice(0, 8);
    let dataDir = '';
    afterAll(async () => {
      await removeTestContainers(runId);
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
    });

    it('a platform stopped (its jobs too) and started again on its data dir has every database back', async () => {
      dataDir = await mkdtemp(join(tmpdir(), 'flynn-ts-pg-restart-'));
      const options: ClusterOptions = {
        hostAddrs: ['127.0.0.2'],
        ports: { controller: 0, router: 0, git: 0, shelf: 0 },
        runtime: 'docker',
        discovery: { backend: 'memory' },
        labels: { 'io.flynn-ts.test': '1', 'io.flynn-ts.test-run': runId },
        stopGraceMs: 1000,
        dataDir,
      };
      /** psql -c SQL on the app's database, retried while the appliance starts; its output. */
      const psql = (cluster: Cluster, sql: string) =>
        until('psql to answer', async () => {
          const url = new URL((await cluster.client.getEnv('keep')).DATABASE_URL as string);
          const env = { PGHOST: url.hostname, PGUSER: url.username, PGPASSWORD: decodeURIComponent(url.password), PGDATABASE: url.pathname.slice(1) };
          const session = cluster.client.run('postgres', ['psql', '-X', '-tA', '-v', 'ON_ERROR_STOP=1', '-c', sql], { env, stdin: '' });
          let out = '';
          for await (const c of session.output) out += c.data.toString();
          return (await session.exit) === 0 ? out : undefined;
        }, 90_000);
      let cluster = await startCluster(options);
      try {
        await cluster.client.createApp({ name: 'keep' });
        await cluster.client.addResource('postgres', 'keep');
        await psql(cluster, "CREATE TABLE t (v text); INSERT INTO t VALUES ('kept')");
      } finally {
        await cluster.close();
      }
      cluster = await startCluster(options);
      try {
        expect(await psql(cluster, 'SELECT v FROM t')).toBe('kept\n');
        expect((await cluster.client.listReleases('postgres')).length).toBe(1); // the same password, no second start
      } finally {
        await cluster.close();
      }
    }, 240_000);
  });
}
