/**
 * The postgres provider (Flynn's flynn-postgres, Heroku Postgres): a platform app, `postgres`,
 * runs PostgreSQL from the locally built image (`npm run images -- --only postgres`) as one job
 * whose data lives on a host volume, pinned to that host. Its superuser password is generated
 * once and kept in the app's release env (`PGPASSWORD`, with `PGHOST`/`PGUSER`/`PGDATABASE`), so
 * every one-off job of the app (`psql`, `pg_dump`) reaches the server as the superuser; the server
 * job initialises its data directory with it on first start.
 *
 * A resource is a database and a role of the same random name with a random password, made and
 * dropped by one-off `psql` jobs of the app (the SQL names and passwords travel in the jobs' env,
 * never in a command line). Apps reach the server by its alias on the job network
 * (`postgres-<app id>.flynn`), which stays the same when the job restarts.
 */
import { randomBytes } from 'node:crypto';
import { FlynnError } from '../common/errors.js';
import { ControllerConflictError, JobStartError } from './errors.js';
import type { JobRunner } from './jobs.js';
import type { Store } from './store.js';
import type { App, Deployment, Release, ReleaseChange } from './types.js';

export const POSTGRES_PROVIDER_DEFAULTS = Object.freeze({
  /** The platform app running the server. */
  appName: 'postgres',
  /** The image `npm run images -- --only postgres` builds (the stack with Debian's `postgresql`). */
  image: 'flynn-ts/stack-postgresql:latest',
  /** The host volume holding the data directory. */
  volume: 'postgres-data',
  /** Where the volume is mounted in the server job. */
  mountPath: '/data',
  /** The process type of the server job. */
  processType: 'postgres',
});

/** Debian packages added to the stack for the appliance's image (`flynn-ts/stack-postgresql`, see `npm run images -- --only postgres`). */
export const POSTGRES_IMAGE_PACKAGES = Object.freeze(['postgresql']);

/** What marks the platform's own app (a user's app named `postgres` is not taken over). */
export const SYSTEM_META = 'flynn-system';

/** The server job: initialise the data directory once (into a temp dir, renamed when complete), then run postgres; SIGTERM is a fast shutdown. */
const SERVER_SCRIPT = `set -e
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
PGDATA=${POSTGRES_PROVIDER_DEFAULTS.mountPath}/pgdata
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  rm -rf "$PGDATA.init"
  umask 077
  printf '%s' "$PGPASSWORD" > /tmp/pw
  "$BIN/initdb" -D "$PGDATA.init" -U postgres --pwfile=/tmp/pw --auth=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
  rm -f /tmp/pw
  echo "host all all all scram-sha-256" >> "$PGDATA.init/pg_hba.conf"
  mv "$PGDATA.init" "$PGDATA"
  echo "initialised $PGDATA"
fi
"$BIN/postgres" -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp &
pid=$!
trap 'kill -INT $pid' TERM INT
wait $pid || wait $pid`;

/** Wait for the server, then run the SQL on stdin (psql variables `name` and `pw` from the env). */
const psqlScript = (sql: string) => `set -e
for i in $(seq 1 240); do pg_isready -q && break; sleep 0.25; done
psql -X -q -v ON_ERROR_STOP=1 -v name="$FLYNN_PG_NAME" -v pw="$FLYNN_PG_PASSWORD" <<'SQL'
${sql}
SQL`;

const CREATE_SQL = `CREATE ROLE :"name" LOGIN PASSWORD :'pw';
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;`;

const DROP_SQL = `DROP DATABASE IF EXISTS :"name" WITH (FORCE);
DROP ROLE IF EXISTS :"name";`;

export interface PostgresProviderOptions {
  store: Store;
  jobs: JobRunner;
  /** Deploy a release of an app (the controller's deployment manager). */
  deploy: (app: App, release: Release) => Promise<ReleaseChange>;
  /** Resolves when the app's deployment in flight is over. */
  settled: (appId: string) => Promise<void>;
  /** Default {@link POSTGRES_PROVIDER_DEFAULTS}.image. */
  image?: string;
}

/** One database of the appliance, as `DATABASE_URL` names it. */
export interface PostgresDatabase {
  name: string;
  url: string;
}

export class PostgresProvider {
  readonly name = 'postgres';
  private readonly image: string;

  constructor(private readonly options: PostgresProviderOptions) {
    this.image = options.image ?? POSTGRES_PROVIDER_DEFAULTS.image;
  }

  /** The appliance app, started the first time (volume, password, release, one job): its running release. */
  async ensureServer(): Promise<{ app: App; release: Release }> {
    const { store } = this.options;
    const name = POSTGRES_PROVIDER_DEFAULTS.appName;
    let app = await store.getApp(name).catch((err: unknown) => (isNotFound(err) ? undefined : Promise.reject(err)));
    if (app && app.meta[SYSTEM_META] !== this.name) throw new ControllerConflictError(`an app named ${name} exists and is not the platform's postgres appliance: rename or delete it`);
    app ??= await store.createApp({ name, meta: { [SYSTEM_META]: this.name } });
    if (app.releaseId !== null) return { app, release: await store.getRelease(app.id, app.releaseId) };
    // A start that failed after the release was made keeps its password (the volume may hold a cluster made with it).
    const release = (await store.listReleases(app.id)).at(-1) ?? (await this.firstRelease(app));
    await store.setAppScale(app.id, { [POSTGRES_PROVIDER_DEFAULTS.processType]: 1 });
    const change = await this.options.deploy(await store.getApp(app.id), release);
    await this.waitDeployed(app, change.deployment);
    return { app: await store.getApp(app.id), release };
  }

  /** Make a database and role; `DATABASE_URL` for it. Nothing is left behind when it fails. */
  async create(): Promise<PostgresDatabase> {
    const { app, release } = await this.ensureServer();
    const name = `db_${randomBytes(8).toString('hex')}`;
    const password = randomBytes(18).toString('base64url');
    try {
      await this.sql(app, CREATE_SQL, { FLYNN_PG_NAME: name, FLYNN_PG_PASSWORD: password });
    } catch (err) {
      await this.drop(name).catch(() => {});
      throw err;
    }
    return { name, url: `postgres://${name}:${password}@${release.env.PGHOST}:5432/${name}` };
  }

  /** Drop a database (closing its connections) and its role. */
  async drop(name: string): Promise<void> {
    const { app } = await this.ensureServer();
    await this.sql(app, DROP_SQL, { FLYNN_PG_NAME: name });
  }

  private async firstRelease(app: App): Promise<Release> {
    const { store, jobs } = this.options;
    if (!jobs.createVolume) throw new ControllerConflictError('this cluster cannot keep host volumes, which the postgres appliance needs');
    const { hostId } = await jobs.createVolume(POSTGRES_PROVIDER_DEFAULTS.volume);
    const artifact = await store.createArtifact({ type: 'docker', url: this.image, processes: {} });
    const alias = `postgres-${app.id}.flynn`;
    return store.createRelease(app.id, {
      artifactId: artifact.id,
      env: { PGHOST: alias, PGPORT: '5432', PGUSER: 'postgres', PGDATABASE: 'postgres', PGPASSWORD: randomBytes(24).toString('base64url') },
      processes: {
        [POSTGRES_PROVIDER_DEFAULTS.processType]: {
          cmd: ['bash', '-c', SERVER_SCRIPT],
          volumes: [{ name: POSTGRES_PROVIDER_DEFAULTS.volume, target: POSTGRES_PROVIDER_DEFAULTS.mountPath }],
          host: hostId,
          alias,
        },
      },
    });
  }

  private async waitDeployed(app: App, deployment: Deployment | null): Promise<void> {
    await this.options.settled(app.id);
    if (!deployment) return;
    const done = await this.options.store.getDeployment(app.id, deployment.id);
    if (done.status !== 'complete') throw new JobStartError(`the postgres appliance did not start: ${done.error ?? done.status} (is the image built? npm run images -- --only postgres)`);
  }

  /** Run SQL as the superuser in a one-off job of the appliance; throws with its output when it fails. */
  private async sql(app: App, sql: string, env: Record<string, string>): Promise<void> {
    const release = await this.options.store.getRelease(app.id, app.releaseId as string);
    const artifact = release.artifactId === null ? null : await this.options.store.getArtifact(release.artifactId);
    const job = await this.options.jobs.runJob({
      appId: app.id,
      appName: app.name,
      release,
      artifactUrl: artifact?.url ?? null,
      artifactType: artifact?.type ?? 'docker',
      cmd: ['bash', '-c', psqlScript(sql)],
      env: { ...release.env, ...env },
    });
    let out = '';
    for await (const o of job.output) {
      if (o.kind === 'output') out = (out + o.data).slice(-2000);
      else if (o.status !== 0) throw new JobStartError(`postgres: ${out.trim().split('\n').at(-1) ?? `psql exited with ${o.status}`}`);
    }
  }
}

function isNotFound(err: unknown): boolean {
  return err instanceof FlynnError && err.kind === 'not_found';
}
