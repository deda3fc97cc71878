/**
 * Taffy: deploy an app from a git URL. The tree of one commit is fetched (shallow where git
 * allows) and handed to the platform's own push deploy, so a fetched app is built, released and
 * deployed exactly as a `git push` of it would be (docs/taffy.md).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DeploySource, PushPreparation } from '../git/types.js';
import { archiveTree, fetchGitSource, type FetchOptions } from './fetch.js';
import { checkGitSource, type CheckedGitSource, type GitScheme } from './git-url.js';
import { TaffyErrorCodes, TaffyFetchError } from './errors.js';

/** What Taffy needs from the platform: its push deploy (ControllerGitPlatform). */
export interface TaffyPlatform {
  deploy(source: DeploySource): Promise<void>;
  preparePush?(app: string): PushPreparation | undefined;
}

export interface TaffyOptions {
  platform: TaffyPlatform;
  /**
   * Fetch `file://` URLs, which read the platform host's disk. Default false; the platform allows
   * them when it listens on loopback only (docs/security.md).
   */
  allowFileUrls?: boolean;
  /** Longest a fetch may take, in ms. Default {@link TAFFY_DEFAULTS}.fetchTimeoutMs. */
  fetchTimeoutMs?: number;
  /** Where fetches are kept while they deploy. Default the OS temp dir. */
  workDir?: string;
  /**
   * Environment git runs with (PATH, HOME for ssh's known_hosts, proxy variables). Default: those
   * of this process. No git config of the host or its user is read either way.
   */
  env?: Record<string, string>;
}

export const TAFFY_DEFAULTS = Object.freeze({ allowFileUrls: false, fetchTimeoutMs: 600_000 });

const PASSED_ENV = ['PATH', 'HOME', 'http_proxy', 'https_proxy', 'no_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'ALL_PROXY', 'all_proxy', 'GIT_SSL_CAINFO', 'SSL_CERT_FILE'];

function defaultEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of PASSED_ENV) {
    const v = process.env[k];
    if (v !== undefined) env[k] = v;
  }
  return env;
}

export class Taffy {
  private readonly schemes: readonly GitScheme[];
  private readonly env: Record<string, string>;
  /** One deploy per app at a time: each waits for the one before it. */
  private readonly appLocks = new Map<string, Promise<void>>();

  constructor(private readonly options: TaffyOptions) {
    this.schemes = options.allowFileUrls ?? TAFFY_DEFAULTS.allowFileUrls ? ['https', 'http', 'git', 'ssh', 'file'] : ['https', 'http', 'git', 'ssh'];
    this.env = options.env ?? defaultEnv();
  }

  /** Refuse a URL or ref before anything is fetched (throws TaffySourceError, a 400). */
  check(source: { url: string; ref?: string }): CheckedGitSource {
    return checkGitSource(source, { allowFile: this.schemes.includes('file') });
  }

  /**
   * Fetch `source` and deploy its tree to `app`. Lines go to `io.output` as they come; a failure
   * throws with one line before any release is made (fetching) or as the push would (building,
   * deploying): either way the app's current release keeps serving.
   */
  async deploy(app: string, source: { url: string; ref?: string }, io: { output: (line: string) => void; signal: AbortSignal }): Promise<void> {
    const checked = this.check(source);
    const previous = this.appLocks.get(app);
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const chained = (previous ?? Promise.resolve()).then(() => mine);
    this.appLocks.set(app, chained);
    try {
      if (previous) {
        io.output('-----> Waiting for the previous deploy of this app from git to finish');
        await previous;
      }
      await this.fetchAndDeploy(app, checked, io);
    } finally {
      release();
      if (this.appLocks.get(app) === chained) this.appLocks.delete(app);
    }
  }

  private async fetchAndDeploy(app: string, source: CheckedGitSource, io: { output: (line: string) => void; signal: AbortSignal }): Promise<void> {
    const timeoutMs = this.options.fetchTimeoutMs ?? TAFFY_DEFAULTS.fetchTimeoutMs;
    const fetchSignal = AbortSignal.any([io.signal, AbortSignal.timeout(timeoutMs)]);
    // The build environment starts (a container, with Docker) while git fetches.
    const preparation = this.options.platform.preparePush?.(app);
    const dir = await mkdtemp(join(this.options.workDir ?? tmpdir(), `flynn-taffy-${app}-`));
    try {
      const fetch: FetchOptions = { dir: join(dir, 'repo.git'), schemes: this.schemes, env: this.env, signal: fetchSignal };
      io.output(`-----> Fetching ${source.display}${source.ref === undefined ? '' : ` at ${source.ref}`}`);
      const rev = await fetchGitSource(source, fetch, io.output).catch((err: unknown) => {
        if (io.signal.aborted) throw err;
        if (fetchSignal.aborted) throw new TaffyFetchError(TaffyErrorCodes.UNREACHABLE, `fetching ${source.display} took over ${Math.round(timeoutMs / 1000)} s`);
        throw err;
      });
      io.output(`-----> Deploying commit ${rev.slice(0, 12)}`);
      const { archive, child } = archiveTree(rev, { ...fetch, signal: io.signal });
      const archived = new Promise<number>((resolve) => child.once('close', (code) => resolve(code ?? 1)));
      child.once('error', () => undefined);
      try {
        await this.options.platform.deploy({ app, archive, output: io.output, signal: io.signal, ...(preparation ? { preparation } : {}) });
      } finally {
        // A deploy that failed before reading the whole tree leaves git blocked on its pipe.
        if (child.exitCode === null) child.kill();
      }
      if ((await archived) !== 0) throw new TaffyFetchError(TaffyErrorCodes.FETCH_FAILED, `git archive of ${rev} failed`);
    } finally {
      await preparation?.dispose().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    }
  }
}
