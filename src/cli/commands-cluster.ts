import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ControllerClient } from '../controller/client.js';
import { appFromGitUrl, gitUrl, type ClusterConfig } from './config.js';
import type { Command } from './context.js';
import { deployFromGit } from './deploy-git.js';
import { CliError } from './errors.js';
import { git, inGitRepo, remotes, remoteUrl } from './git.js';
import { knownHostsPath, pinnedSshCommand } from './ssh-pin.js';
import { formatTable, shortTime } from './table.js';

/** Where a cluster's git receiver is: the configured host, else what the controller says, else port 2222 of the controller's host. */
async function clusterGitHost(cluster: ClusterConfig, client: ControllerClient): Promise<string> {
  return cluster.gitHost ?? (await client.status()).gitHost ?? `${new URL(cluster.url).hostname}:2222`;
}

export const clusterCommands: Command[] = [
  {
    name: 'key-add',
    usage: 'key-add [FILE]',
    summary: 'add an SSH public key allowed to git push (default ~/.ssh/id_ed25519.pub or id_rsa.pub)',
    args: [0, 1],
    async run(ctx) {
      const home = ctx.io.env.HOME ?? '';
      const candidates = ctx.positionals[0] ? [ctx.positionals[0]] : ['id_ed25519.pub', 'id_ecdsa.pub', 'id_rsa.pub'].map((f) => join(home, '.ssh', f));
      let text: string | undefined;
      for (const file of candidates) {
        text = await readFile(file, 'utf8').catch(() => undefined);
        if (text !== undefined) break;
      }
      if (text === undefined) {
        const hint = ctx.positionals[0] ? '' : ': create one with ssh-keygen -t ed25519, or give the public key file';
        throw new CliError(`cannot read a public key from ${candidates.join(', ')}${hint}`);
      }
      const key = await (await ctx.client()).addKey(text.trim());
      ctx.out(`Key ${key.fingerprint} added.`);
    },
  },
  {
    name: 'keys',
    usage: 'keys [--json]',
    summary: 'list the SSH keys allowed to push',
    options: { json: { type: 'boolean' } },
    async run(ctx) {
      const keys = await (await ctx.client()).listKeys();
      if (ctx.json) return ctx.printJson(keys);
      ctx.out(formatTable(['FINGERPRINT', 'COMMENT'], keys.map((k) => [k.fingerprint, k.comment])));
    },
  },
  {
    name: 'key-remove',
    usage: 'key-remove FINGERPRINT',
    summary: 'remove an SSH key',
    args: [1, 1],
    async run(ctx) {
      const key = await (await ctx.client()).removeKey(ctx.positionals[0] ?? '');
      ctx.out(`Key ${key.fingerprint} removed.`);
    },
  },
  {
    name: 'create',
    usage: 'create [-r remote] [--from-git URL[#REF]] NAME',
    summary: 'create an app (and a git remote "flynn" when run in a git repo); --from-git: and deploy it from a git URL',
    options: { remote: { type: 'string', short: 'r' }, 'from-git': { type: 'string' } },
    args: [1, 1],
    async run(ctx) {
      const name = ctx.positionals[0] ?? '';
      const client = await ctx.client();
      const app = await client.createApp({ name });
      ctx.out(`Created ${app.name}`);
      const fromGit = ctx.values['from-git'];
      if (typeof fromGit === 'string') return deployFromGit(ctx, client, app.name, fromGit);
      if (!(await inGitRepo(ctx.io.cwd))) return;
      const cluster = await ctx.cluster();
      const gitHost = await clusterGitHost(cluster, client);
      const remote = typeof ctx.values.remote === 'string' ? ctx.values.remote : 'flynn';
      const url = gitUrl(gitHost, app.name);
      const args = (await remoteUrl(ctx.io.cwd, remote)) === undefined ? ['remote', 'add', remote, url] : ['remote', 'set-url', remote, url];
      const res = await git(ctx.io.cwd, args);
      if (res.code !== 0) throw new CliError(`app created, but git ${args.join(' ')} failed: ${res.stderr.trim()}`);
      ctx.out(`Added git remote ${remote}: ${url}`);
      // A pinned git host: make this repository's ssh trust the key server-add checked (unless the user set their own ssh command).
      if (cluster.gitFingerprint !== undefined && (await git(ctx.io.cwd, ['config', '--local', 'core.sshCommand'])).code !== 0) {
        const set = await git(ctx.io.cwd, ['config', '--local', 'core.sshCommand', pinnedSshCommand(knownHostsPath(ctx.io.env))]);
        if (set.code !== 0) throw new CliError(`app created, but git config core.sshCommand failed: ${set.stderr.trim()}`);
      }
    },
  },
  {
    name: 'apps',
    usage: 'apps [--json]',
    summary: 'list apps',
    options: { json: { type: 'boolean' } },
    async run(ctx) {
      const client = await ctx.client();
      const apps = await client.listApps();
      if (ctx.json) return ctx.printJson(apps);
      const rows = await Promise.all(
        apps.map(async (a) => {
          const release = a.releaseId ? await client.currentRelease(a.id).catch(() => undefined) : undefined;
          return [a.name, a.id, release ? `v${release.version}` : '-', shortTime(a.createdAt)];
        }),
      );
      ctx.out(formatTable(['NAME', 'ID', 'RELEASE', 'CREATED'], rows));
    },
  },
  {
    name: 'info',
    usage: 'info [-a APP] [--json]',
    summary: "show an app's release, formation and routes",
    options: { json: { type: 'boolean' } },
    async run(ctx) {
      const client = await ctx.client();
      const app = await client.getApp(await ctx.app());
      const release = app.releaseId ? await client.currentRelease(app.id) : undefined;
      const formation = release ? await client.getFormation(app.id, release.id) : undefined;
      const routes = await client.listRoutes(app.id);
      if (ctx.json) return ctx.printJson({ app, release: release ?? null, formation: formation ?? null, routes });
      const rows: string[][] = [
        ['Name', app.name],
        ['ID', app.id],
        ['Release', release ? `v${release.version} (${release.id})` : '-'],
        ['Strategy', app.strategy],
        ['Processes', formation ? Object.entries(formation.processes).map(([t, n]) => `${t}=${n}`).join(' ') || '-' : '-'],
        ['Routes', routes.map(routeLabel).join(', ') || '-'],
        ['Created', shortTime(app.createdAt)],
      ];
      ctx.out(rows.map(([k, v]) => `${(k + ':').padEnd(11)}${v}`).join('\n'));
    },
  },
  {
    name: 'delete',
    usage: 'delete [-a APP] [-y]',
    summary: 'delete an app with its releases, jobs and routes',
    help: 'Asks for confirmation on stdin (y, yes or the app name) unless -y is given.',
    options: { yes: { type: 'boolean', short: 'y' } },
    async run(ctx) {
      const name = await ctx.app();
      if (ctx.values.yes !== true) {
        ctx.io.stderr(`Are you sure you want to delete the app "${name}"? Type yes or the app name to confirm: `);
        const answer = (await ctx.io.readLine())?.trim() ?? '';
        // y/yes in any case, or the app's name as given (Heroku's --confirm APP).
        if (!/^y(es)?$/i.test(answer) && answer !== name) throw new CliError('not deleted');
      }
      const client = await ctx.client();
      const app = await client.deleteApp(name);
      ctx.out(`Deleted ${app.name} (${app.id})`);
      // Like heroku apps:destroy: the repository's remotes that push to the deleted app go too.
      const found = await remotes(ctx.io.cwd);
      if (found.size === 0) return;
      const url = gitUrl(await clusterGitHost(await ctx.cluster(), client).catch(() => ''), app.name);
      for (const [remote, remoteTo] of found) {
        if (remoteTo !== url && !(remote === 'flynn' && appFromGitUrl(remoteTo) === app.name)) continue;
        const res = await git(ctx.io.cwd, ['remote', 'remove', remote]);
        if (res.code === 0) ctx.out(`Removed git remote ${remote} (${remoteTo}).`);
        else ctx.io.stderr(`flynn: could not remove git remote ${remote}: ${res.stderr.trim()}\n`);
      }
    },
  },
];

export function routeLabel(r: { type: string; domain?: string; path?: string; port?: number }): string {
  return r.type === 'http' ? `http:${r.domain}${r.path && r.path !== '/' ? r.path : ''}` : `tcp:${r.port}`;
}
