/**
 * `flynn resource add|remove`, `flynn resources` and `flynn pg psql|dump|restore` (docs/postgres.md):
 * resources from the platform's providers, and the app's postgres database reached through
 * one-off jobs of the appliance app over the run stream (its image has psql and pg_dump).
 */
import type { ControllerClient } from '../controller/client.js';
import type { EnvChange, Resource, ResourceChange } from '../controller/types.js';
import { reportEnvChange } from './commands-app.js';
import type { Command, CommandContext } from './context.js';
import { CliError } from './errors.js';
import { runAttached } from './run.js';
import { formatTable, shortTime } from './table.js';

/** The app's resource of `provider`, or a one-line error saying how to add one. */
async function resourceOf(client: ControllerClient, app: string, provider: string): Promise<Resource> {
  const found = (await client.listResources(app)).find((r) => r.provider === provider);
  if (!found) throw new CliError(`app ${app} has no ${provider} resource (flynn resource add ${provider} -a ${app})`);
  return found;
}

function envChange(change: ResourceChange): EnvChange {
  return change.deployment === null ? { release: change.release, deployment: null, unchanged: [] } : { release: change.release, deployment: change.deployment, unchanged: [] };
}

/** The PG* env that points psql and pg_dump at the app's database (its own role, not the superuser). */
async function databaseEnv(client: ControllerClient, app: string): Promise<Record<string, string>> {
  const resource = await resourceOf(client, app, 'postgres');
  const value = (await client.getEnv(app))[resource.envVars[0] ?? 'DATABASE_URL'];
  if (value === undefined) throw new CliError(`app ${app} has a postgres resource but no DATABASE_URL: remove and add it again`);
  const url = new URL(value);
  return { PGHOST: url.hostname, PGPORT: url.port || '5432', PGUSER: decodeURIComponent(url.username), PGPASSWORD: decodeURIComponent(url.password), PGDATABASE: url.pathname.slice(1) };
}

/** The platform app that runs `provider` (the postgres appliance). */
async function providerApp(client: ControllerClient, provider: string): Promise<string> {
  const found = (await client.listProviders()).find((p) => p.name === provider);
  if (!found) throw new CliError(`this cluster has no ${provider} provider`);
  return found.app;
}

/** What each `pg` subcommand runs in the appliance; dump and restore move plain SQL through stdout and stdin, never a terminal. */
const PG_COMMANDS: Record<string, { cmd: string[]; extraArgs: boolean; tty: boolean }> = {
  psql: { cmd: ['psql'], extraArgs: true, tty: true },
  // Plain SQL without owners or grants, which restores into any other app's database (its own role).
  dump: { cmd: ['pg_dump', '--no-owner', '--no-acl', '--clean', '--if-exists'], extraArgs: true, tty: false },
  restore: { cmd: ['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '--single-transaction'], extraArgs: false, tty: false },
};

export const resourceCommands: Command[] = [
  {
    name: 'resource',
    usage: 'resource add PROVIDER [-a APP] | resource remove PROVIDER [-a APP]',
    summary: 'add a resource to an app (postgres: a database and role; DATABASE_URL is set) or remove it (the database is dropped)',
    help: 'Each is a new release of the app (its env changes), deployed. remove drops the database and everything in it: dump it first (flynn pg dump > file).',
    options: { json: { type: 'boolean' } },
    args: [2, 2],
    async run(ctx) {
      const client = await ctx.client();
      const app = await ctx.app();
      const [sub, provider] = ctx.positionals as [string, string];
      if (sub === 'add') {
        const change = await client.addResource(provider, app);
        if (ctx.json) return ctx.printJson(change.resource);
        ctx.out(`Created ${provider} resource ${change.resource.id} for ${app}: ${change.resource.envVars.join(', ')} set.`);
        return reportEnvChange(ctx, client, app, envChange(change), 'set');
      }
      if (sub === 'remove') {
        const resource = await resourceOf(client, app, provider);
        const change = await client.removeResource(provider, resource.id);
        ctx.out(`Removed ${provider} resource ${resource.id} of ${app}: ${resource.envVars.join(', ')} unset, ${resource.meta.database ?? 'its data'} dropped.`);
        return reportEnvChange(ctx, client, app, envChange(change), 'unset');
      }
      throw new CliError(`unknown resource subcommand ${JSON.stringify(sub)} (add, remove)`, { usage: true });
    },
  },
  {
    name: 'resources',
    usage: 'resources [-a APP] [--json]',
    summary: "list an app's resources (with no app given and no flynn remote: every app's)",
    options: { json: { type: 'boolean' } },
    async run(ctx) {
      const client = await ctx.client();
      const app = await ctx.app().catch(() => undefined);
      const list = await client.listResources(app);
      if (ctx.json) return ctx.printJson(list);
      if (list.length === 0) return ctx.out(app ? `${app} has no resources (flynn resource add postgres -a ${app})` : 'No resources.');
      ctx.out(formatTable(['ID', 'PROVIDER', 'APP', 'ENV', 'CREATED'], list.map((r) => [r.id, r.provider, r.appName, r.envVars.join(','), shortTime(r.createdAt)])));
    },
  },
  {
    name: 'pg',
    usage: 'pg psql [-a APP] [-- ARG...] | pg dump [-a APP] > FILE | pg restore [-a APP] < FILE',
    summary: "open psql on the app's database, or stream a dump of it out or back in",
    help: [
      "psql runs in the postgres appliance as the app's own role, with a terminal when you are on one; ARGs after -- go to psql (e.g. -- -c 'SELECT 1').",
      'dump writes plain SQL without owners or grants (pg_dump --no-owner --no-acl --clean): restore it into this app or another with pg restore,',
      'which runs it in one transaction and stops at the first error.',
    ].join('\n'),
    args: [1, Infinity],
    async run(ctx: CommandContext) {
      const [sub, ...args] = ctx.positionals as [string, ...string[]];
      const what = PG_COMMANDS[sub];
      if (!what) throw new CliError(`unknown pg subcommand ${JSON.stringify(sub)} (psql, dump, restore)`, { usage: true });
      if (args.length > 0 && !what.extraArgs) throw new CliError(`pg ${sub} takes no arguments (usage: flynn pg restore [-a APP] < FILE)`, { usage: true });
      const client = await ctx.client();
      const app = await ctx.app();
      const env = await databaseEnv(client, app);
      return runAttached(ctx, client, await providerApp(client, 'postgres'), { cmd: [...what.cmd, ...args], env }, { tty: what.tty });
    },
  },
];
