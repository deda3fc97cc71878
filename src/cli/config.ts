import { mkdir, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../common/atomic-file.js';
import { CliError } from './errors.js';

/** One cluster the CLI knows, as `server-add` writes it. */
export interface ClusterConfig {
  name: string;
  /** Controller URL. */
  url: string;
  key: string;
  /** `host[:port]` of the git receiver; `ssh://git@<gitHost>/<app>.git`. */
  gitHost?: string;
  /** SSH host key fingerprint (`SHA256:...`) of the git receiver, pinned by `server-add --git-fingerprint`. */
  gitFingerprint?: string;
  /** TLS certificate pin (SHA-256, base64), kept for a TLS-fronted controller. */
  tlsPin?: string;
}

/** The `~/.flynnrc` file (JSON). */
export interface FlynnRc {
  default?: string;
  clusters: ClusterConfig[];
}

/** `$FLYNNRC`, else `~/.flynnrc`. */
export function configPath(env: NodeJS.ProcessEnv): string {
  return env.FLYNNRC || join(env.HOME || homedir(), '.flynnrc');
}

export async function readConfig(path: string): Promise<FlynnRc> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { clusters: [] };
    throw err;
  }
  try {
    const parsed = JSON.parse(text) as FlynnRc;
    if (!Array.isArray(parsed.clusters)) throw new Error('no clusters list');
    return parsed;
  } catch (err) {
    throw new CliError(`${path} is not a valid flynnrc (${(err as Error).message})`);
  }
}

/** Write atomically, readable by the owner only (it holds cluster keys). */
export async function writeConfig(path: string, rc: FlynnRc): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFileAtomic(path, JSON.stringify(rc, null, 2) + '\n', { mode: 0o600 });
}

/** The cluster named by `-c`, else the default, else the only one. */
export function pickCluster(rc: FlynnRc, name: string | undefined): ClusterConfig {
  const wanted = name ?? rc.default;
  if (wanted !== undefined) {
    const found = rc.clusters.find((c) => c.name === wanted);
    if (!found) throw new CliError(`no cluster named ${JSON.stringify(wanted)} (see flynn server-add)`);
    return found;
  }
  const [only] = rc.clusters;
  if (!only) throw new CliError('no cluster configured: run flynn server-add NAME URL KEY first');
  return only;
}

/** The git URL of an app on a cluster. */
export function gitUrl(gitHost: string, app: string): string {
  return `ssh://git@${gitHost}/${app}.git`;
}

/** The one configured cluster whose git host a `ssh://git@host:port/app.git` remote points at, if any. */
export function clusterOfGitUrl(rc: FlynnRc, url: string): string | undefined {
  let host: string;
  try {
    host = new URL(url).host;
  } catch {
    return undefined; // scp-like `git@host:app.git`: no port to tell clusters apart by
  }
  const matches = rc.clusters.filter((c) => c.gitHost !== undefined && (c.gitHost === host || `${c.gitHost}:22` === host));
  return matches.length === 1 ? matches[0]?.name : undefined;
}

/** The app name in a flynn git remote URL (`ssh://git@host/<app>.git`, `git@host:<app>.git`). */
export function appFromGitUrl(url: string): string | undefined {
  const m = /[/:]([a-z0-9][a-z0-9-]*)(?:\.git)?\/?$/.exec(url.trim());
  return m?.[1];
}
