import { ControllerClient } from '../controller/client.js';
import { configPath, readConfig, writeConfig, type ClusterConfig, type FlynnRc } from './config.js';
import { clientOptions, type Command, type CommandContext } from './context.js';
import { CliError } from './errors.js';
import { knownHostsPath, pinGitHost, unpinGitHost } from './ssh-pin.js';
import { formatTable } from './table.js';

/** The clusters in ~/.flynnrc: add (or replace with --force), list, remove. */
export const serverCommands: Command[] = [
  {
    name: 'server-add',
    usage: 'server-add [-f] [-g githost] [--git-fingerprint SHA256:...] [-p pin] [-d] [--no-verify] NAME URL KEY',
    summary: 'add a cluster to ~/.flynnrc ($FLYNNRC)',
    help: [
      'The first cluster added (or one added with -d) is the default. The controller must answer and',
      'accept KEY, unless --no-verify is given. -f (--force) replaces a cluster of the same name.',
      '--git-fingerprint (with -g) pins the git server: its SSH host key is fetched, checked against the',
      'fingerprint and kept in ~/.flynn/known_hosts ($FLYNN_KNOWN_HOSTS); flynn create makes git trust it.',
    ].join('\n'),
    options: {
      force: { type: 'boolean', short: 'f' },
      githost: { type: 'string', short: 'g' },
      'git-fingerprint': { type: 'string' },
      pin: { type: 'string', short: 'p' },
      default: { type: 'boolean', short: 'd' },
      'no-verify': { type: 'boolean' },
    },
    args: [3, 3],
    async run(ctx) {
      const [name, url, key] = ctx.positionals as [string, string, string];
      try {
        const parsed = new URL(url);
        if (!['http:', 'https:'].includes(parsed.protocol)) throw new Error('not http(s)');
      } catch {
        throw new CliError(`URL ${JSON.stringify(url)} is not an http(s) URL`);
      }
      const path = configPath(ctx.io.env);
      const rc = await readConfig(path);
      const old = rc.clusters.find((c) => c.name === name);
      if (old !== undefined && ctx.values.force !== true) {
        throw new CliError(`a cluster named ${JSON.stringify(name)} already exists in ${path}: replace it with flynn server-add --force, or remove it with flynn server-remove ${name}`);
      }
      const gitHost = typeof ctx.values.githost === 'string' ? ctx.values.githost : undefined;
      const gitFingerprint = typeof ctx.values['git-fingerprint'] === 'string' ? ctx.values['git-fingerprint'] : undefined;
      if (gitFingerprint !== undefined && gitHost === undefined) throw new CliError('--git-fingerprint needs -g githost', { usage: true });
      const entry: ClusterConfig = {
        name,
        url,
        key,
        ...(gitHost !== undefined ? { gitHost } : {}),
        ...(gitFingerprint !== undefined ? { gitFingerprint: gitFingerprint.trim().replace(/=+$/, '') } : {}),
        ...(typeof ctx.values.pin === 'string' ? { tlsPin: ctx.values.pin } : {}),
      };
      // Check before writing anything: a controller that refuses the key, or a git host key that does not match, adds no cluster.
      if (ctx.values['no-verify'] !== true) await verifyCluster(entry);
      const pinned = gitFingerprint !== undefined && gitHost !== undefined ? await pinGitHost(ctx.io.env, gitHost, gitFingerprint) : undefined;
      if (old !== undefined) {
        rc.clusters = rc.clusters.map((c) => (c === old ? entry : c));
        // The replaced entry's pinned key goes unless another cluster still pins that host (the new key stays).
        await dropPin(ctx, rc, old, entry, pinned?.line);
      } else {
        rc.clusters.push(entry);
      }
      const wasDefault = rc.default === name;
      if (rc.clusters.length === 1 || ctx.values.default === true) rc.default = name;
      await writeConfig(path, rc);
      ctx.out(`Cluster "${name}" ${old !== undefined ? 'replaced' : 'added'}${rc.default === name && !wasDefault ? ' and set as default' : ''}.`);
      if (pinned !== undefined) ctx.out(`Git host ${gitHost} pinned to ${entry.gitFingerprint} in ${pinned.path}.`);
    },
  },
  {
    name: 'servers',
    usage: 'servers [--json]',
    summary: 'list the clusters in ~/.flynnrc ($FLYNNRC), marking the default',
    help: '--json prints each cluster without its key, with "default": true|false.',
    options: { json: { type: 'boolean' } },
    async run(ctx) {
      const rc = await readConfig(configPath(ctx.io.env));
      if (ctx.json) {
        return ctx.printJson(rc.clusters.map(({ key: _key, ...c }) => ({ ...c, default: c.name === rc.default })));
      }
      if (rc.clusters.length === 0) return ctx.out('No clusters: add one with flynn server-add NAME URL KEY.');
      ctx.out(formatTable(['NAME', 'URL', 'GIT HOST', ''], rc.clusters.map((c) => [c.name, c.url, c.gitHost ?? '-', c.name === rc.default ? '(default)' : ''])));
    },
  },
  {
    name: 'server-remove',
    usage: 'server-remove NAME',
    summary: 'remove a cluster from ~/.flynnrc ($FLYNNRC) and its pinned git host key',
    help: 'When the default cluster is removed, the first remaining one (if any) becomes the default.',
    args: [1, 1],
    async run(ctx) {
      const name = ctx.positionals[0] as string;
      const path = configPath(ctx.io.env);
      const rc = await readConfig(path);
      const old = rc.clusters.find((c) => c.name === name);
      if (old === undefined) throw new CliError(`no cluster named ${JSON.stringify(name)} in ${path} (see flynn servers)`);
      rc.clusters = rc.clusters.filter((c) => c !== old);
      const wasDefault = rc.default === name;
      if (wasDefault) {
        const next = rc.clusters[0];
        if (next) rc.default = next.name;
        else delete rc.default;
      }
      await writeConfig(path, rc);
      ctx.out(`Cluster "${name}" removed.`);
      await dropPin(ctx, rc, old);
      if (wasDefault && rc.default !== undefined) ctx.out(`Cluster "${rc.default}" is now the default.`);
    },
  },
];

/**
 * Remove the pinned key of `old`'s git host, unless another cluster in `rc` (besides `replacement`,
 * the entry taking its place) pins that host too. `keep` is the line just pinned for the replacement.
 */
async function dropPin(ctx: CommandContext, rc: FlynnRc, old: ClusterConfig, replacement?: ClusterConfig, keep?: string): Promise<void> {
  const host = old.gitHost;
  if (host === undefined || old.gitFingerprint === undefined) return;
  if (rc.clusters.some((c) => c !== replacement && c.gitHost === host && c.gitFingerprint !== undefined)) return;
  const removed = await unpinGitHost(ctx.io.env, host, keep);
  if (removed > 0) ctx.out(`Pinned key of git host ${host} removed from ${knownHostsPath(ctx.io.env)}.`);
}

/** Check that the controller answers at the cluster's URL and accepts its key, with a one-line reason if not. */
async function verifyCluster(cluster: { url: string; key: string; tlsPin?: string }): Promise<void> {
  const client = new ControllerClient(clientOptions(cluster));
  try {
    await client.listApps();
  } catch (err) {
    const { kind, code } = err as { kind?: string; code?: string };
    const message = (err as Error).message;
    const why =
      kind === 'unauthorized'
        ? `the controller at ${cluster.url} refused the key (HTTP 401): check KEY`
        : code === 'FLYNN_ERR_HTTPS_REQUIRED'
          ? message
          : cluster.tlsPin === undefined && /certificate/.test(message) && cluster.url.startsWith('https:')
            ? `the controller at ${cluster.url} has a certificate this machine does not trust: give its pin with -p PIN (npm start prints the whole server-add line)`
            : kind === 'unavailable'
              ? `cannot reach a controller at ${cluster.url}: ${message.replace(/^cannot reach \S+: /, '')}`
              : `${cluster.url} does not answer like a flynn controller: ${message}`;
    throw new CliError(`${why} (not added; --no-verify adds it anyway)`);
  } finally {
    await client.close();
  }
}
