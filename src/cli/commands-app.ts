import { readFile } from 'node:fs/promises';
import type { ControllerClient } from '../controller/client.js';
import { ScaleFailedError, ScaleTimeoutError } from '../controller/errors.js';
import { lastDeploymentOf } from '../controller/last-deployments.js';
import { SCALE_WAIT_DEFAULTS } from '../controller/scale-wait.js';
import type { Deployment, EnvChange, Formation } from '../controller/types.js';
import type { RouteView, UpdateHttpRouteInput } from '../controller/route-types.js';
import { routeLabel } from './commands-cluster.js';
import type { Command, CommandContext } from './context.js';
import { runAttached } from './run.js';
import { deployFromGit } from './deploy-git.js';
import { CliError } from './errors.js';
import { ROUTE_OPTION_FLAGS, ROUTE_OPTION_HELP, ROUTE_OPTION_USAGE, routeOptionsFromFlags } from './route-flags.js';
import { formatTable, shortTime } from './table.js';

async function awaitDeployment(ctx: CommandContext, client: ControllerClient, app: string, deployment: Deployment): Promise<void> {
  try {
    await client.waitForDeployment(app, deployment.id);
  } catch (err) {
    throw new CliError(`deployment ${deployment.id} failed, the previous release keeps running: ${(err as Error).message}`);
  }
}

/** Say what an env change did, and wait for its deployment. */
export async function reportEnvChange(ctx: CommandContext, client: ControllerClient, app: string, change: EnvChange, how: 'set' | 'unset'): Promise<void> {
  // Like `heroku config:unset` of a missing variable: nothing to do is a success, said plainly.
  for (const k of change.unchanged) ctx.out(how === 'unset' ? `${k} is not set.` : `${k} already has that value.`);
  if (change.deployment === null) {
    ctx.out(change.release ? `No change: release v${change.release.version} stays current.` : 'No change.');
    return;
  }
  await awaitDeployment(ctx, client, app, change.deployment);
  ctx.out(`Created release v${change.release.version} and deployed it.`);
}

/** The certificate and key files of `--tls-cert`/`--tls-key`, read (both or neither). */
async function readTlsPair(certFile: unknown, keyFile: unknown): Promise<{ cert: string; key: string } | undefined> {
  if (certFile === undefined && keyFile === undefined) return undefined;
  if (typeof certFile !== 'string' || typeof keyFile !== 'string') throw new CliError('--tls-cert and --tls-key go together', { usage: true });
  const read = async (file: string, what: string) => {
    const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new CliError(`cannot read the ${what} ${file}: ${err.code ?? err.message}`);
    });
    if (!text.includes('-----BEGIN')) throw new CliError(`${file} is not a PEM ${what}`);
    return text;
  };
  return { cert: await read(certFile, 'certificate'), key: await read(keyFile, 'private key') };
}

/** A route's certificate in `flynn routes`: `acme: pending`, `acme: issued (expires 2027-03-05)`, `acme: failed: <reason>`, `uploaded`, or `-`. */
export function tlsLabel(r: RouteView): string {
  if (r.type !== 'http') return '-';
  const acme = r.acme;
  if (!acme) return r.tls ? 'uploaded' : '-';
  const expires = acme.expiresAt ? ` (expires ${acme.expiresAt.slice(0, 10)})` : '';
  if (acme.status === 'failed') return `acme: failed: ${acme.error ?? 'unknown error'}${r.tls ? `; serving the last certificate${expires}` : ''}`;
  return `acme: ${acme.status}${acme.status === 'issued' ? expires : ''}`;
}

/** How long `flynn scale` waits for the jobs it asked for, in ms. */
const SCALE_WAIT_MS = SCALE_WAIT_DEFAULTS.timeoutMs;

export const appCommands: Command[] = [
  {
    name: 'deploy-git',
    usage: 'deploy-git [-a APP] URL[#REF]',
    summary: 'build and deploy the app from a git URL (https, http, git, ssh; file:// on a loopback cluster) at a branch, tag or commit, as a push would',
    args: [1, 1],
    async run(ctx) {
      return deployFromGit(ctx, await ctx.client(), await ctx.app(), ctx.positionals[0] ?? '');
    },
  },
  {
    name: 'routes',
    usage: 'routes [-a APP] [--json]',
    summary: "list an app's routes",
    options: { json: { type: 'boolean' } },
    async run(ctx) {
      const routes = await (await ctx.client()).listRoutes(await ctx.app());
      if (ctx.json) return ctx.printJson(routes);
      // The TLS column only when a route has a certificate of its own (uploaded or ACME).
      const tls = routes.some((r) => r.type === 'http' && (r.tls || r.acme));
      ctx.out(formatTable(['ROUTE', 'SERVICE', 'ID', ...(tls ? ['TLS'] : [])], routes.map((r) => [routeLabel(r), r.service, r.id, ...(tls ? [tlsLabel(r)] : [])])));
    },
  },
  {
    name: 'route-add-http',
    usage: `route-add-http [-a APP] [-s SERVICE] [-p PATH] [--sticky] [--tls-cert FILE --tls-key FILE | --acme] ${ROUTE_OPTION_USAGE} DOMAIN`,
    summary: "route HTTP(S) requests for DOMAIN (default service <app>-web); --tls-cert/--tls-key: PEM files served for DOMAIN over HTTPS; --acme: a certificate from the cluster's ACME CA (Let's Encrypt), renewed automatically",
    help: ROUTE_OPTION_HELP,
    options: { service: { type: 'string', short: 's' }, path: { type: 'string', short: 'p' }, sticky: { type: 'boolean' }, 'tls-cert': { type: 'string' }, 'tls-key': { type: 'string' }, acme: { type: 'boolean' }, ...ROUTE_OPTION_FLAGS },
    args: [1, 1],
    async run(ctx) {
      const app = await ctx.app();
      if (ctx.values.acme === true && ctx.values['tls-cert'] !== undefined) throw new CliError('--acme and --tls-cert exclude each other', { usage: true });
      const tls = await readTlsPair(ctx.values['tls-cert'], ctx.values['tls-key']);
      const route = await (await ctx.client()).createRoute(app, {
        type: 'http',
        domain: ctx.positionals[0] ?? '',
        service: typeof ctx.values.service === 'string' ? ctx.values.service : `${app}-web`,
        ...(typeof ctx.values.path === 'string' ? { path: ctx.values.path } : {}),
        sticky: ctx.values.sticky === true,
        ...(tls ? { tls } : {}),
        ...(ctx.values.acme === true ? { acme: true } : {}),
        ...routeOptionsFromFlags(ctx.values),
      });
      ctx.out(route.id);
    },
  },
  {
    name: 'route-update',
    usage: `route-update [-a APP] [-s SERVICE] [--sticky|--no-sticky] [--tls-cert FILE --tls-key FILE|--no-tls|--acme|--no-acme] ${ROUTE_OPTION_USAGE} [--no-redirect-https] [--no-timeouts] [--no-health-check] ID`,
    summary: 'change an HTTP route (ID as shown by flynn routes): its service, stickiness, certificate (uploaded, or --acme: automatic; --no-acme stops it), timeouts, health check, HTTPS redirect',
    help: `${ROUTE_OPTION_HELP} A timeout or health flag changes only that setting; --no-timeouts and --no-health-check drop them all.`,
    options: {
      service: { type: 'string', short: 's' },
      sticky: { type: 'boolean' },
      'no-sticky': { type: 'boolean' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'no-tls': { type: 'boolean' },
      acme: { type: 'boolean' },
      'no-acme': { type: 'boolean' },
      'no-redirect-https': { type: 'boolean' },
      'no-timeouts': { type: 'boolean' },
      'no-health-check': { type: 'boolean' },
      ...ROUTE_OPTION_FLAGS,
    },
    args: [1, 1],
    async run(ctx) {
      const v = ctx.values;
      for (const [a, b] of [['sticky', 'no-sticky'], ['tls-cert', 'no-tls'], ['acme', 'no-acme'], ['acme', 'tls-cert'], ['redirect-https', 'no-redirect-https'], ['health-path', 'no-health-check']] as const) {
        if (v[a] !== undefined && v[b] !== undefined) throw new CliError(`--${a} and --${b} contradict each other`, { usage: true });
      }
      const client = await ctx.client();
      const app = await ctx.app();
      const id = ctx.positionals[0] ?? '';
      const current = await client.getRoute(app, id);
      if (current.type !== 'http') throw new CliError(`route ${id} is a TCP route: remove it and add another`);
      const tls = await readTlsPair(v['tls-cert'], v['tls-key']);
      const change: UpdateHttpRouteInput = {
        ...(typeof v.service === 'string' ? { service: v.service } : {}),
        ...(v.sticky === true ? { sticky: true } : v['no-sticky'] === true ? { sticky: false } : {}),
        ...(tls ? { tls } : v['no-tls'] === true ? { tls: null } : {}),
        ...(v.acme === true ? { acme: true } : v['no-acme'] === true ? { acme: false } : {}),
        ...(v['no-redirect-https'] === true ? { redirectHttps: false } : {}),
        ...(v['no-timeouts'] === true ? { timeouts: null } : {}),
        ...(v['no-health-check'] === true ? { healthCheck: null } : {}),
        ...routeOptionsFromFlags(v, v['no-timeouts'] === true ? { healthCheck: current.healthCheck } : current),
      };
      if (Object.keys(change).length === 0) throw new CliError('nothing to change: give at least one option', { usage: true });
      const route = await client.updateRoute(app, id, change);
      ctx.out(`Route ${route.id} updated.`);
    },
  },
  {
    name: 'route-add-tcp',
    usage: 'route-add-tcp [-a APP] [-s SERVICE] PORT',
    summary: 'route TCP connections on PORT (default service <app>-web)',
    options: { service: { type: 'string', short: 's' } },
    args: [1, 1],
    async run(ctx) {
      const app = await ctx.app();
      const raw = ctx.positionals[0] ?? '';
      if (!/^\d+$/.test(raw)) throw new CliError(`PORT must be a number, got ${JSON.stringify(raw)}`, { usage: true });
      const route = await (await ctx.client()).createRoute(app, { type: 'tcp', port: Number(raw), service: typeof ctx.values.service === 'string' ? ctx.values.service : `${app}-web` });
      ctx.out(route.id);
    },
  },
  {
    name: 'route-remove',
    usage: 'route-remove [-a APP] ID',
    summary: 'remove a route (ID as shown by flynn routes, e.g. http/…)',
    args: [1, 1],
    async run(ctx) {
      const route = await (await ctx.client()).deleteRoute(await ctx.app(), ctx.positionals[0] ?? '');
      ctx.out(`Route ${route.id} removed.`);
    },
  },
  {
    name: 'ps',
    usage: 'ps [-a APP] [--all] [--json]',
    summary: "list an app's jobs across the cluster (--all: with the ended ones and their exit status)",
    options: { json: { type: 'boolean' }, all: { type: 'boolean' } },
    async run(ctx) {
      const client = await ctx.client();
      const app = await ctx.app();
      const jobs = await client.listJobs(app, { all: ctx.values.all === true });
      if (ctx.json) return ctx.printJson(jobs);
      const versions = new Map((await client.listReleases(app)).map((r) => [r.id, `v${r.version}`]));
      const state = (j: (typeof jobs)[number]) => (j.exit ? `${j.state} (exit ${j.exit.code}${j.exit.reason === 'exit' ? '' : `, ${j.exit.reason}`})` : j.state);
      ctx.out(formatTable(['ID', 'TYPE', 'STATE', 'RELEASE', 'STARTED'], jobs.map((j) => [j.id, j.type, state(j), versions.get(j.releaseId) ?? j.releaseId, shortTime(j.createdAt)])));
      // Why jobs failed to start (e.g. a damaged slug): each reason once, with the last job it stopped.
      const why = new Map(jobs.flatMap((j) => (j.error === undefined ? [] : [[j.error, j.id] as const])));
      for (const [error, id] of why) ctx.out(`${id} failed to start: ${error}`);
    },
  },
  {
    name: 'log',
    usage: 'log [-a APP] [-f] [-t TYPE] [-n LINES] [JOB]',
    summary: "print an app's logs (one job's with JOB); -f follows",
    help: 'JOB is a job id or a unique prefix of one (at least 8 characters, as the log lines show: web.a8d84235).',
    options: { follow: { type: 'boolean', short: 'f' }, type: { type: 'string', short: 't' }, lines: { type: 'string', short: 'n' } },
    args: [0, 1],
    async run(ctx) {
      const lines = typeof ctx.values.lines === 'string' ? Number(ctx.values.lines) : undefined;
      if (lines !== undefined && !Number.isInteger(lines)) throw new CliError('-n LINES must be a number', { usage: true });
      const job = ctx.positionals[0];
      const stream = (await ctx.client()).logs(await ctx.app(), { follow: ctx.values.follow === true, ...(job ? { job } : {}), ...(typeof ctx.values.type === 'string' ? { type: ctx.values.type } : {}), ...(lines !== undefined ? { lines } : {}) });
      for await (const l of stream) {
        const text = job ? l.msg : `${shortTime(l.time)} ${l.type}.${l.jobId.slice(0, 8)}: ${l.msg}`;
        if (l.stream === 'stderr' && job) ctx.io.stderr(text + '\n');
        else ctx.out(text);
      }
    },
  },
  {
    name: 'scale',
    usage: 'scale [-a APP] [--no-wait] [TYPE=COUNT...]',
    summary: 'scale process types of the running release (no args: show counts)',
    help: [
      `Waits until the release runs exactly that many jobs of each type, all up and the new ones up for ${SCALE_WAIT_DEFAULTS.holdMs / 1000} s (at most ${SCALE_WAIT_MS / 1000} s), as Flynn's scale does; --no-wait returns at once.`,
      'New jobs that crash or fail to start fail the scale in one line (how many, the exit status, the last output; the count stays).',
      'A TYPE the running release does not have is refused, naming the types it has. Counts are kept per app across releases:',
      'a type a rollback left out keeps its count (shown without args) and runs again in a release that has it.',
    ].join('\n'),
    options: { 'no-wait': { type: 'boolean' } },
    args: [0, 64],
    async run(ctx) {
      const client = await ctx.client();
      const app = await ctx.app();
      if (ctx.positionals.length === 0) {
        const [release, a] = await Promise.all([client.currentRelease(app), client.getApp(app)]);
        const f = await client.getFormation(app, release.id);
        ctx.out(Object.keys(release.processes).map((t) => `${t}=${f.processes[t] ?? 0}`).join(' '));
        // Counts of types this release lacks are kept for a later release that has them (docs/controller.md).
        const kept = Object.entries(a.scale ?? {}).filter(([t, n]) => n > 0 && !Object.hasOwn(release.processes, t));
        if (kept.length > 0) ctx.out(`kept for a release that has them (v${release.version} has not): ${kept.map(([t, n]) => `${t}=${n}`).join(' ')}`);
        return;
      }
      const processes: Record<string, number> = {};
      for (const arg of ctx.positionals) {
        const m = /^([A-Za-z0-9_-]+)=(\d+)$/.exec(arg);
        if (!m) throw new CliError(`expected TYPE=COUNT, got ${JSON.stringify(arg)}`, { usage: true });
        processes[m[1] as string] = Number(m[2]);
      }
      const asked = (f: Formation) => Object.keys(processes).map((t) => `${t}=${f.processes[t] ?? 0}`).join(' ');
      if (ctx.values['no-wait'] === true) {
        ctx.out(`scaled ${app}: ${asked(await client.scale(app, processes))}`);
        return;
      }
      const to = Object.entries(processes).map(([t, n]) => `${t}=${n}`).join(' ');
      const { formation, upMs } = await client.scaleAndWait(app, processes, { timeoutMs: SCALE_WAIT_MS }).catch((err: unknown) => {
        if (err instanceof ScaleTimeoutError) throw new CliError(`scaled ${app} to ${to}, but ${err.message} (see flynn ps and flynn log)`);
        if (err instanceof ScaleFailedError) throw new CliError(`scaled ${app} to ${to}, but ${err.message}`);
        throw err;
      });
      ctx.out(`scaled ${app}: ${asked(formation)} (up in ${(upMs / 1000).toFixed(1)} s)`);
    },
  },
  {
    name: 'run',
    usage: 'run [-a APP] [-d] [-e K=V...] [--size MB] CMD [ARG...]',
    summary: "run a one-off command in the current release (its slug and env): stdin streamed, a terminal when you are on one, exit code propagated",
    help: [
      'In a terminal the job gets a pseudo-terminal (`flynn run bash` is a shell in a dyno): keys go to it raw (Ctrl-C, Ctrl-D included) and',
      'its window follows yours. Otherwise stdin is streamed to it (`echo hi | flynn run cat`) and Ctrl-C is sent to it as SIGINT (twice: detach,',
      'which stops it). -d starts it detached and prints the job id. --size MB caps its memory. Options go before CMD; everything after CMD is passed to it.',
    ].join('\n'),
    options: { detach: { type: 'boolean', short: 'd' }, env: { type: 'string', short: 'e', multiple: true }, size: { type: 'string' } },
    args: [1, Infinity],
    passThrough: true,
    async run(ctx) {
      const client = await ctx.client();
      const env: Record<string, string> = {};
      for (const kv of (ctx.values.env as string[] | undefined) ?? []) {
        const eq = kv.indexOf('=');
        if (eq <= 0) throw new CliError(`-e expects K=V, got ${JSON.stringify(kv)}`, { usage: true });
        env[kv.slice(0, eq)] = kv.slice(eq + 1);
      }
      const size = ctx.values.size === undefined ? undefined : Number(ctx.values.size);
      if (size !== undefined && (!Number.isInteger(size) || size < 6)) throw new CliError(`--size expects a memory limit in MB (at least 6), got ${JSON.stringify(ctx.values.size)}`, { usage: true });
      const app = await ctx.app();
      if (ctx.values.detach === true) {
        ctx.out((await client.runDetached(app, { cmd: ctx.positionals, env, ...(size === undefined ? {} : { memoryMb: size }) })).id);
        return;
      }
      return runAttached(ctx, client, app, { cmd: ctx.positionals, env, ...(size === undefined ? {} : { memoryMb: size }) });
    },
  },
  {
    name: 'env',
    usage: 'env [-a APP] [--json] | env set K=V... | env unset K... | env get K',
    summary: "show or change an app's environment (each change is a new release, deployed)",
    options: { json: { type: 'boolean' } },
    args: [0, 256],
    async run(ctx) {
      const client = await ctx.client();
      const app = await ctx.app();
      const [sub, ...rest] = ctx.positionals;
      if (sub === undefined) {
        const env = await client.getEnv(app);
        if (ctx.json) return ctx.printJson(env);
        const lines = Object.keys(env).sort().map((k) => `${k}=${env[k]}`);
        if (lines.length > 0) ctx.out(lines.join('\n'));
        return;
      }
      if (sub === 'get') {
        const env = await client.getEnv(app);
        const k = rest[0];
        if (k === undefined || rest.length !== 1) throw new CliError('usage: flynn env get K', { usage: true });
        if (env[k] === undefined) throw new CliError(`${k} is not set`);
        return ctx.out(env[k]);
      }
      let change: EnvChange;
      if (sub === 'set') {
        const set: Record<string, string> = {};
        for (const kv of rest) {
          const eq = kv.indexOf('=');
          if (eq <= 0) throw new CliError(`expected K=V, got ${JSON.stringify(kv)}`, { usage: true });
          set[kv.slice(0, eq)] = kv.slice(eq + 1);
        }
        if (rest.length === 0) throw new CliError('usage: flynn env set K=V...', { usage: true });
        change = await client.setEnv(app, set);
      } else if (sub === 'unset') {
        if (rest.length === 0) throw new CliError('usage: flynn env unset K...', { usage: true });
        change = await client.unsetEnv(app, rest);
      } else {
        throw new CliError(`unknown env subcommand ${JSON.stringify(sub)} (set, unset, get)`, { usage: true });
      }
      await reportEnvChange(ctx, client, app, change, sub === 'unset' ? 'unset' : 'set');
    },
  },
  {
    name: 'releases',
    usage: 'releases [-a APP] [--json]',
    summary: "list an app's releases, newest first: which one is serving, which failed to deploy",
    help: [
      'STATUS is "current" for the release that is serving, else the status of its last deployment:',
      '"failed" (with why), "running", "pending", or empty when it served once and was replaced.',
      '--json adds "status" to each release.',
    ].join('\n'),
    options: { json: { type: 'boolean' } },
    async run(ctx) {
      const client = await ctx.client();
      const app = await client.getApp(await ctx.app());
      const [releases, deployments] = await Promise.all([client.listReleases(app.id), client.listDeployments(app.id)]);
      const last = lastDeploymentOf(deployments);
      const status = (id: string): string => {
        if (id === app.releaseId) return 'current';
        const d = last.get(id);
        return d === undefined || d.status === 'complete' ? '' : d.status;
      };
      const rows = releases.reverse().map((r) => ({ ...r, status: status(r.id) }));
      if (ctx.json) return ctx.printJson(rows);
      ctx.out(
        formatTable(
          ['VERSION', 'ID', 'PROCESSES', 'CREATED', 'STATUS'],
          rows.map((r) => {
            const error = r.status === 'failed' ? last.get(r.id)?.error : undefined;
            return [`v${r.version}`, r.id, Object.keys(r.processes).join(',') || '-', shortTime(r.createdAt), error ? `failed: ${error.split('\n')[0]}` : r.status];
          }),
        ),
      );
    },
  },
  {
    name: 'rollback',
    usage: 'rollback [-a APP] [VERSION]',
    summary: 'deploy an earlier release again (default: the last one before the current that did not fail to deploy)',
    args: [0, 1],
    async run(ctx) {
      const client = await ctx.client();
      const app = await ctx.app();
      const target = ctx.positionals[0];
      const change = await client.rollback(app, target);
      await awaitDeployment(ctx, client, app, change.deployment);
      ctx.out(`Rolled back to v${change.target.version}: release v${change.release.version} deployed.`);
    },
  },
  {
    name: 'kill',
    usage: 'kill [-a APP] JOB',
    summary: 'stop a job (the scheduler starts a replacement if the formation wants one)',
    help: 'JOB is a job id or a unique prefix of one (at least 8 characters, as flynn log shows).',
    args: [1, 1],
    async run(ctx) {
      const job = ctx.positionals[0] ?? '';
      await (await ctx.client()).killJob(await ctx.app(), job);
      ctx.out(`Job ${job} killed.`);
    },
  },
];
