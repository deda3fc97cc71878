/** A build's scratch directory and mounts, and a build started ahead of its source ({@link prepareSlugBuild}). */
import { lchown, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { bundledBuildpacksDir, findNpmDir } from './buildpack-source.js';
import { SlugInputError } from './errors.js';
import type { BuildExecutor, BuildMount, PreparedBuildJob } from './executor.js';
import { BUILD_PATHS, SLUG_DEFAULTS } from './types.js';

export const APP_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** What {@link prepareSlugBuild} needs: the options of the coming build that do not depend on its source. */
export interface PrepareSlugBuildOptions {
  /** The app's name: `[a-z0-9][a-z0-9-]*`, at most 63 characters. Keys the build cache and slug paths. */
  app: string;
  /** Where the build job runs (`DockerBuildExecutor`, `ProcessBuildExecutor`). */
  executor: BuildExecutor;
  /** The bundled buildpacks directory. Default: this package's `buildpacks/`. */
  buildpacksDir?: string;
  /** Host npm package dir, mounted read-only for `FLYNN_NPM_CLI`; `null` for none. Default: found from `npm` on PATH. */
  npmDir?: string | null;
  /**
   * Keep each app's build cache on this host in `<cacheRoot>/<app>`, used in place by the build
   * (nothing is downloaded, packed or uploaded per build; shelf holds no cache then). Builds of one
   * app must not overlap (the git receiver runs one push per app at a time). Default: the cache
   * travels through shelf as `cache/<app>.tgz`, so any builder host can use it.
   */
  cacheRoot?: string;
  /** Memory limit of the build job in bytes. Default {@link SLUG_DEFAULTS}.memoryBytes. */
  memoryBytes?: number;
  /** Parent of the build's scratch directory. Default the OS temp dir. */
  workDir?: string;
}

type HostDirs = Record<'build' | 'cache' | 'env' | 'meta' | 'home' | 'custom', string>;

/** A build's scratch directory and mounts, with its job's environment when started ahead. */
interface Scratch {
  work: string;
  host: HostDirs;
  mounts: BuildMount[];
  prepared?: PreparedBuildJob;
}

/**
 * A build started before its source arrived: its scratch directory exists and, with an executor
 * that supports it (Docker), its build container is already started and waits for the job. Give
 * it to {@link buildSlug} as `preparation`, or `discard` it.
 */
export class SlugBuildPreparation {
  private scratch: Promise<Scratch> | undefined;

  /** @internal Use {@link prepareSlugBuild}. */
  constructor(
    readonly app: string,
    readonly executor: BuildExecutor,
    scratch: Promise<Scratch>,
  ) {
    this.scratch = scratch;
    scratch.catch(() => {});
  }

  /** @internal Hand the scratch over to the build (once). */
  take(): Promise<Scratch> | undefined {
    const s = this.scratch;
    this.scratch = undefined;
    return s;
  }

  /** Remove the scratch directory and the started build environment. Idempotent; a no-op once a build took it. */
  async discard(): Promise<void> {
    const s = await this.take()?.catch(() => undefined);
    if (s) await releaseScratch(s);
  }
}

/**
 * Start what a build of `app` needs before its source is there: the scratch directory and, when
 * the executor can (`prepare`), the build container (created and started, waiting for the job).
 * Docker's container start then overlaps with the push instead of adding to the build.
 */
export function prepareSlugBuild(options: PrepareSlugBuildOptions): SlugBuildPreparation {
  const { app } = options;
  if (typeof app !== 'string' || !APP_RE.test(app)) throw new SlugInputError(`invalid app name ${JSON.stringify(app)}: use lowercase letters, digits and dashes`, { field: 'app' });
  return new SlugBuildPreparation(app, options.executor, createScratch(options, true));
}

export async function createScratch(options: PrepareSlugBuildOptions, prepare: boolean): Promise<Scratch> {
  const work = await mkdtemp(path.join(options.workDir ?? tmpdir(), `flynn-build-${options.app}-`));
  const dirs = { build: 'build', cache: 'cache', env: 'env', meta: 'meta', home: 'home', custom: 'custom' } as const;
  const host = Object.fromEntries(Object.entries(dirs).map(([k, v]) => [k, path.join(work, v)])) as HostDirs;
  if (options.cacheRoot !== undefined) host.cache = path.join(options.cacheRoot, options.app);
  try {
    await Promise.all(Object.values(host).map((d) => mkdir(d, { recursive: true })));
  } catch (err) {
    await rm(work, { recursive: true, force: true }).catch(() => {});
    throw err;
  }
  const mounts = baseMounts(host, options);
  const scratch: Scratch = { work, host, mounts };
  if (prepare && options.executor.prepare) scratch.prepared = options.executor.prepare({ mounts, memoryBytes: options.memoryBytes ?? SLUG_DEFAULTS.memoryBytes });
  return scratch;
}

/** The mounts of every build job (local buildpacks are copied into the scratch dir's `custom`). */
export function baseMounts(host: HostDirs, options: Pick<PrepareSlugBuildOptions, 'buildpacksDir' | 'npmDir'>): BuildMount[] {
  const npmDir = options.npmDir === null ? undefined : (options.npmDir ?? findNpmDir());
  const mounts: BuildMount[] = [
    { hostPath: host.build, path: BUILD_PATHS.build },
    { hostPath: host.cache, path: BUILD_PATHS.cache },
    { hostPath: host.env, path: BUILD_PATHS.env, readOnly: true },
    { hostPath: host.meta, path: BUILD_PATHS.meta },
    { hostPath: host.home, path: BUILD_PATHS.home },
    { hostPath: options.buildpacksDir ?? bundledBuildpacksDir(), path: BUILD_PATHS.buildpacks, readOnly: true },
    // Git buildpacks are cloned here once the source names them; a bind mount shows them then. Writable:
    // a buildpack may leave an `export` file in its own directory for the next one (Heroku's rule).
    { hostPath: host.custom, path: BUILD_PATHS.custom },
  ];
  if (npmDir !== undefined) mounts.push({ hostPath: npmDir, path: BUILD_PATHS.npm, readOnly: true });
  return mounts;
}

export async function releaseScratch(scratch: Scratch): Promise<void> {
  await scratch.prepared?.discard().catch(() => {});
  await rm(scratch.work, { recursive: true, force: true }).catch(() => {});
}

/** Give a tree to `owner` (not following symlinks), so a build running as that user can write it; a no-op when it is this process's. */
export async function chownTree(root: string, owner: { uid: number; gid: number }): Promise<void> {
  if (owner.uid === process.getuid?.()) return;
  await lchown(root, owner.uid, owner.gid);
  for (const entry of await readdir(root, { withFileTypes: true, recursive: true })) {
    await lchown(path.join(entry.parentPath ?? entry.path, entry.name), owner.uid, owner.gid);
  }
}
