import type { ParseArgsConfig } from 'node:util';
import { ControllerClient, type ControllerClientOptions } from '../controller/client.js';
import { appFromGitUrl, clusterOfGitUrl, configPath, pickCluster, readConfig, type ClusterConfig } from './config.js';
import { CliError } from './errors.js';
import { remoteUrl } from './git.js';

/** Where the CLI reads and writes: the real process in `main.ts`, anything in tests. */
export interface CliIo {
  env: NodeJS.ProcessEnv;
  cwd: string;
  stdout(text: string): void;
  stderr(text: string): void;
  /** One line from stdin (for confirmations), undefined at EOF. */
  readLine(): Promise<string | undefined>;
  /** The process's raw stdio, for `flynn run`; without it a run reads no stdin and gets no tty. */
  stdio?: CliStdio;
}

/** Raw access to the process's stdin, stdout and signals (`flynn run`). */
export interface CliStdio {
  /** The process's stdin. */
  stdin: AsyncIterable<Uint8Array | string> & { isTTY?: boolean; setRawMode?(raw: boolean): unknown; destroy(): unknown };
  /** The size of the terminal stdout is, or undefined when stdout is not a terminal. */
  terminalSize(): { cols: number; rows: number } | undefined;
  /** Call `fn` when the terminal is resized (SIGWINCH); returns the unsubscribe. */
  onResize(fn: () => void): () => void;
  /** Call `fn` on SIGINT (instead of dying); returns the unsubscribe. */
  onInterrupt(fn: () => void): () => void;
  /** Write bytes as they are (escape sequences intact). */
  write(stream: 'stdout' | 'stderr', data: Uint8Array): void;
}

export interface GlobalFlags {
  app?: string;
  cluster?: string;
}

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** What a command gets: its parsed args and lazy access to the cluster, client and app. */
export class CommandContext {
  private clientInstance: ControllerClient | undefined;
  private clusterInstance: ClusterConfig | undefined;

  constructor(
    readonly io: CliIo,
    readonly flags: GlobalFlags,
    readonly values: Values,
    readonly positionals: string[],
  ) {}

  get json(): boolean {
    return this.values.json === true;
  }

  /** `-c CLUSTER`, else the cluster the `flynn` git remote of the current directory points at, else the default one. */
  async cluster(): Promise<ClusterConfig> {
    if (!this.clusterInstance) {
      const rc = await readConfig(configPath(this.io.env));
      let name = this.flags.cluster;
      if (name === undefined) {
        const url = await remoteUrl(this.io.cwd, 'flynn');
        name = url === undefined ? undefined : clusterOfGitUrl(rc, url);
      }
      this.clusterInstance = pickCluster(rc, name);
    }
    return this.clusterInstance;
  }

  async client(): Promise<ControllerClient> {
    if (!this.clientInstance) {
      const cluster = await this.cluster();
      this.clientInstance = new ControllerClient(clientOptions(cluster));
    }
    return this.clientInstance;
  }

  /** `-a APP`, else the app of the `flynn` git remote of the current directory. */
  async app(): Promise<string> {
    const explicit = typeof this.values.app === 'string' ? this.values.app : this.flags.app;
    if (explicit) return explicit;
    const url = await remoteUrl(this.io.cwd, 'flynn');
    const fromRemote = url === undefined ? undefined : appFromGitUrl(url);
    if (!fromRemote) throw new CliError('no app: give -a APP, or run in a git repo with a flynn remote');
    return fromRemote;
  }

  out(text: string): void {
    this.io.stdout(text.endsWith('\n') ? text : text + '\n');
  }

  printJson(value: unknown): void {
    this.out(JSON.stringify(value, null, 2));
  }

  async close(): Promise<void> {
    await this.clientInstance?.close();
  }
}

/** The controller client of a cluster: its URL and key, and over HTTPS its pinned certificate. */
export function clientOptions(cluster: Pick<ClusterConfig, 'url' | 'key' | 'tlsPin'>): ControllerClientOptions {
  return { url: cluster.url, key: cluster.key, ...(cluster.tlsPin !== undefined && cluster.url.startsWith('https:') ? { tls: { pin: cluster.tlsPin } } : {}) };
}

/** One `flynn` command. */
export interface Command {
  name: string;
  /** `flynn <usage>` */
  usage: string;
  summary: string;
  /** Extra lines for `--help`. */
  help?: string;
  options?: OptionSpec;
  /** Positional count bounds. Default 0..0. */
  args?: [min: number, max: number];
  /** Everything after the first positional is passed through untouched (`run`). */
  passThrough?: boolean;
  run(ctx: CommandContext): Promise<number | void>;
}
