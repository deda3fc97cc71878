import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { cp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { FlynnError } from '../common/errors.js';
import { applySlugignore, packDir, unpackTar } from './archive.js';
import { APP_RE, baseMounts, chownTree, createScratch, releaseScratch, type PrepareSlugBuildOptions, type SlugBuildPreparation } from './build-preparation.js';
import { bundledBuildpacksDir, cloneBuildpack, parseBuildpackRef, readOrder, type BuildpackRef } from './buildpack-source.js';
import { BUILD_DRIVER_SCRIPT } from './driver.js';
import { BuildFailedError, SlugErrorCodes, SlugInputError } from './errors.js';
import { parseProcfile, parseRelease } from './procfile.js';
import { traceSlug } from './trace.js';
import { BUILD_PATHS, PROCESS_COMMANDS_DIR, PROCESS_TYPES_FILE, SLUG_DEFAULTS, type BuildResult, type ProcessTypes, type SlugShelf } from './types.js';

export interface BuildSlugOptions extends PrepareSlugBuildOptions {
  /** The app's source as a tar stream (e.g. `git archive` output). */
  source: Readable | AsyncIterable<Uint8Array>;
  /** Whether `source` is gzipped. Default false. */
  sourceGzip?: boolean;
  /** The app's config vars: given to `bin/compile` as ENV_DIR files, never written into the slug. */
  env?: Record<string, string>;
  /** Where the cache is read from and the slug and cache are stored. */
  shelf: SlugShelf;
  /** Detect order (buildpack references). Default: `buildpacksDir/ORDER`. */
  buildpacks?: string[];
  /** Tell buildpacks there is no network (`FLYNN_NPM_OFFLINE=1`). Default: the executor's `offline` (Docker network `none`), else false. */
  offline?: boolean;
  /** Restore and save the app's build cache. Default true. */
  cache?: boolean;
  /** Kill the build job after this many ms. Default {@link SLUG_DEFAULTS}.timeoutMs. */
  timeoutMs?: number;
  /** Each line of build output, as a pusher should see it. */
  onOutput?: (line: string) => void;
  signal?: AbortSignal;
  /**
   * A build of this app started ahead with {@link prepareSlugBuild} (e.g. when the push began).
   * The build takes it over: it is used (when it fits) or discarded, never reused.
   */
  preparation?: SlugBuildPreparation;
}

/** A build output line that says why the build fails (` !     ...`, not a ` !     Warning:`). */
const FAILURE_LINE_RE = /^ ! {5}(?!Warning:)(.*)$/;
/** The driver's line for a buildpack that exited non-zero: a repeat once the buildpack said why itself. */
const DRIVER_FAILURE_RE = /^ ! {5}Build failed: buildpack \S+ bin\/(compile|release) exited with status \d+$/;
const VAR_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Shelf path of an app's build cache. */
export function cachePath(app: string): string {
  return `/cache/${app}.tgz`;
}

/**
 * Build a slug: unpack the source, drop what `.slugignore` names, restore the app's build cache,
 * run the buildpacks (detect / compile / release) in one build job, merge the `Procfile` over the
 * default process types, pack the build dir as a gzipped tar and store it in shelf at
 * `/slugs/<app>/<id>.tgz`, then save the build cache at `/cache/<app>.tgz`.
 *
 * Output goes to `onOutput` line by line. A failed build throws a {@link BuildFailedError} naming
 * its step, and stores nothing.
 */
export async function buildSlug(options: BuildSlugOptions): Promise<BuildResult> {
  const started = performance.now();
  const { app, executor, shelf, signal } = options;
  const env = options.env ?? {};
  // A preparation handed in is this build's, to use or to discard, whatever happens below.
  const preparation = options.preparation;
  try {
    if (typeof app !== 'string' || !APP_RE.test(app)) throw new SlugInputError(`invalid app name ${JSON.stringify(app)}: use lowercase letters, digits and dashes`, { field: 'app' });
    for (const [k, v] of Object.entries(env)) {
      if (!VAR_RE.test(k)) throw new SlugInputError(`invalid config var name ${JSON.stringify(k)}`, { field: `env.${k}` });
      if (typeof v !== 'string') throw new SlugInputError(`config var ${k} must be a string`, { field: `env.${k}` });
    }
  } catch (err) {
    await preparation?.discard();
    throw err;
  }
  const prepared = preparation && preparation.app === app && preparation.executor === executor ? preparation.take() : undefined;
  if (preparation && !prepared) await preparation.discard();
  const buildpacksDir = options.buildpacksDir ?? bundledBuildpacksDir();
  const useCache = options.cache ?? true;
  const tail: string[] = [];
  const emit = (line: string) => {
    tail.push(line);
    if (tail.length > SLUG_DEFAULTS.failureOutputLines) tail.shift();
    options.onOutput?.(line);
  };
  const fail = (step: string, reason: string, cause?: unknown): never => {
    emit(` !     ${step} failed: ${reason}`);
    throw new BuildFailedError(step, reason, { output: [...tail], cause, ...(cause instanceof SlugInputError ? { code: SlugErrorCodes.INVALID_INPUT } : {}) });
  };
  /** Run a host-side step; any error becomes a BuildFailedError naming it. */
  const step = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    signal?.throwIfAborted();
    try {
      return await fn();
    } catch (err) {
      if (err instanceof BuildFailedError) throw err;
      if (signal?.aborted) throw new BuildFailedError(name, 'the build was cancelled', { code: SlugErrorCodes.BUILD_ABORTED, output: [...tail], cause: err });
      return fail(name, (err as Error).message, err);
    }
  };

  // A preparation that failed (e.g. no disk space) leaves the build to start afresh, which reports why.
  const scratch = (await prepared?.catch(() => undefined)) ?? (await createScratch(options, false));
  const { work, host } = scratch;
  // This build's own options decide the mounts; a preparation made with others is not used.
  const mounts = baseMounts(host, options);
  try {
    await step('unpack source', () => unpackTar(options.source, host.build, { gzip: options.sourceGzip ?? false }));
    traceSlug('source unpacked', app);

    const slugignore = await readFile(path.join(host.build, '.slugignore'), 'utf8').catch(() => undefined);
    if (slugignore !== undefined) {
      const removed = await step('apply .slugignore', () => applySlugignore(host.build, slugignore));
      emit(`-----> Removing ${removed.length} path${removed.length === 1 ? '' : 's'} listed in .slugignore`);
      for (const r of removed.slice(0, 20)) emit(`       ${r}`);
    }

    for (const [k, v] of Object.entries(env)) await writeFile(path.join(host.env, k), v, { mode: 0o600 });

    const { paths: packPaths, detect } = await step('resolve buildpacks', () => resolveBuildpacks(options, env, host, buildpacksDir, emit));

    let cached = false;
    if (useCache && options.cacheRoot !== undefined) {
      cached = (await readdir(host.cache)).length > 0;
      emit(cached ? '-----> Using the build cache kept on this host' : `-----> No build cache yet for ${app}`);
    } else if (useCache) {
      cached = await step('restore build cache', async () => {
        let body: Readable;
        try {
          body = (await shelf.get(cachePath(app), { signal })).body;
        } catch (err) {
          if (err instanceof FlynnError && err.kind === 'not_found') {
            emit(`-----> No build cache yet for ${app}`);
            return false;
          }
          throw err;
        }
        const entries = await unpackTar(body, host.cache, { gzip: true });
        emit(`-----> Restoring build cache (${entries} entries)`);
        return true;
      });
    }

    traceSlug('cache restored', app);
    await writeFile(path.join(host.meta, 'driver.sh'), BUILD_DRIVER_SCRIPT, { mode: 0o755 });
    const jobEnv: Record<string, string> = {
      BUILD_DIR: BUILD_PATHS.build,
      CACHE_DIR: BUILD_PATHS.cache,
      ENV_DIR: BUILD_PATHS.env,
      FLYNN_META_DIR: BUILD_PATHS.meta,
      FLYNN_DETECT: detect ? '1' : '0',
      HOME: BUILD_PATHS.home,
    };
    if (executor.stack !== undefined) jobEnv.STACK = executor.stack;
    if (options.offline ?? executor.offline ?? false) jobEnv.FLYNN_NPM_OFFLINE = '1';
    if (mounts.some((m) => m.path === BUILD_PATHS.npm)) jobEnv.FLYNN_NPM_CLI = `${BUILD_PATHS.npm}/bin/npm-cli.js`;
    const timeoutMs = options.timeoutMs ?? SLUG_DEFAULTS.timeoutMs;
    signal?.throwIfAborted();
    // The last line of the job that said why it fails: the pusher sees it once, and it is the error's reason.
    let said: string | undefined;
    const job = {
      argv: ['/bin/sh', `${BUILD_PATHS.meta}/driver.sh`, ...packPaths],
      env: jobEnv,
      mounts,
      workDir: BUILD_PATHS.build,
      memoryBytes: options.memoryBytes ?? SLUG_DEFAULTS.memoryBytes,
      timeoutMs,
      signal,
      onLine: (line: string) => {
        if (said !== undefined && DRIVER_FAILURE_RE.test(line)) return;
        const failure = FAILURE_LINE_RE.exec(line)?.[1];
        if (failure !== undefined) said = failure;
        emit(line);
      },
    };
    if (executor.runsAs !== undefined) {
      const user = executor.runsAs;
      await step('hand the build dirs to the build user', async () => {
        await chownTree(work, user);
        if (options.cacheRoot !== undefined) await chownTree(host.cache, user);
      });
    }
    const result = await (scratch.prepared ? scratch.prepared.run(job) : executor.run(job));
    traceSlug('build job done', app);
    const jobStep = (await readFile(path.join(host.meta, 'step'), 'utf8').catch(() => 'start build')).trim();
    if (result.aborted) throw new BuildFailedError(jobStep, 'the build was cancelled', { code: SlugErrorCodes.BUILD_ABORTED, output: [...tail] });
    if (result.timedOut) {
      emit(` !     Build timed out after ${timeoutMs} ms during ${jobStep}`);
      throw new BuildFailedError(jobStep, `timed out after ${timeoutMs} ms`, { code: SlugErrorCodes.BUILD_TIMEOUT, output: [...tail] });
    }
    if (result.oomKilled) {
      const limit = `${Math.round((options.memoryBytes ?? SLUG_DEFAULTS.memoryBytes) / 1024 / 1024)} MB`;
      emit(` !     Build killed during ${jobStep}: it used more than its ${limit} memory limit`);
      throw new BuildFailedError(jobStep, `killed for using more than its ${limit} memory limit`, { output: [...tail] });
    }
    if (result.exitCode !== 0 || jobStep !== 'done') {
      const reason = jobStep === 'detect' ? 'no buildpack detected the app' : said !== undefined ? said.replace(/^build failed:\s*/i, '') : `exited with status ${result.exitCode}`;
      throw new BuildFailedError(jobStep, reason, { output: [...tail] });
    }

    const usedPacks = (await readFile(path.join(host.meta, 'buildpacks'), 'utf8').catch(() => '')).split('\n').filter(Boolean);
    const processTypes = await step('discover process types', async () => {
      const defaults = parseRelease(await readFile(path.join(host.meta, 'release.yml'), 'utf8').catch(() => ''));
      const procfileText = await readFile(path.join(host.build, 'Procfile'), 'utf8').catch(() => undefined);
      const declared = procfileText === undefined ? {} : parseProcfile(procfileText);
      emit('-----> Discovering process types');
      if (procfileText !== undefined) emit(`       Procfile declares types -> ${Object.keys(declared).join(', ') || '(none)'}`);
      emit(`       Default types for buildpack -> ${Object.keys(defaults).join(', ') || '(none)'}`);
      const merged: ProcessTypes = { ...defaults, ...declared };
      await mkdir(path.join(host.build, path.dirname(PROCESS_TYPES_FILE)), { recursive: true });
      await writeFile(path.join(host.build, PROCESS_TYPES_FILE), `${JSON.stringify(merged, null, 2)}\n`);
      const commandsDir = path.join(host.build, PROCESS_COMMANDS_DIR);
      await rm(commandsDir, { recursive: true, force: true });
      await mkdir(commandsDir, { recursive: true });
      // Type names are [A-Za-z0-9_-]+ (parseProcfile and parseRelease check): safe as file names.
      for (const [type, command] of Object.entries(merged)) await writeFile(path.join(commandsDir, type), command);
      return merged;
    });

    const id = randomUUID();
    const slugFile = path.join(work, 'slug.tgz');
    emit('-----> Compressing slug');
    const { bytes: slugBytes, sha256: slugSha256 } = await step('compress slug', () => packDir(host.build, slugFile));
    emit(`       done, ${formatBytes(slugBytes)}`);
    traceSlug('slug packed', app);
    const slugPath = `/slugs/${app}/${id}.tgz`;
    await step('store slug', () => shelf.put(slugPath, createReadStream(slugFile), { signal }));
    traceSlug('slug stored', app);

    if (useCache && options.cacheRoot === undefined) {
      // A cache that cannot be saved costs the next build time, not this build its slug.
      try {
        const cacheFile = path.join(work, 'cache.tgz');
        await packDir(host.cache, cacheFile);
        await shelf.put(cachePath(app), createReadStream(cacheFile), { signal });
      } catch (err) {
        emit(` !     Warning: the build cache was not saved: ${(err as Error).message}`);
      }
    }
    traceSlug('cache saved', app);
    const durationMs = Math.round(performance.now() - started);
    emit(`-----> Build finished in ${(durationMs / 1000).toFixed(1)}s: ${shelf.urlFor(slugPath)}`);
    return { id, slugUrl: shelf.urlFor(slugPath), slugPath, slugBytes, slugSha256, processTypes, buildpacks: usedPacks, durationMs, cached };
  } finally {
    await releaseScratch(scratch);
  }
}

/**
 * Which buildpacks to run, as paths inside the job: `.buildpacks` (all, in order), else
 * `BUILDPACK_URL` (that one), else the detect order. Git buildpacks are cloned here, on the host.
 */
async function resolveBuildpacks(
  options: BuildSlugOptions,
  env: Record<string, string>,
  host: { build: string; custom: string },
  buildpacksDir: string,
  emit: (line: string) => void,
): Promise<{ paths: string[]; detect: boolean }> {
  const listed = await readFile(path.join(host.build, '.buildpacks'), 'utf8').catch(() => undefined);
  let refs: BuildpackRef[];
  let detect = false;
  if (listed !== undefined) {
    // A comment starts a line or follows a space, so `url#ref` keeps its ref.
    refs = listed.split('\n').map((l) => l.replace(/(^|\s)#.*/, '').trim()).filter(Boolean).map((l) => parseBuildpackRef(l, buildpacksDir));
    if (refs.length === 0) throw new SlugInputError('.buildpacks lists no buildpack');
    emit(`-----> Using ${refs.length} buildpack${refs.length === 1 ? '' : 's'} from .buildpacks`);
  } else if (env.BUILDPACK_URL !== undefined && env.BUILDPACK_URL.trim() !== '') {
    refs = [parseBuildpackRef(env.BUILDPACK_URL, buildpacksDir)];
    emit(`-----> Using the buildpack BUILDPACK_URL names: ${env.BUILDPACK_URL}`);
  } else {
    refs = (options.buildpacks ?? (await readOrder(buildpacksDir))).map((r) => parseBuildpackRef(r, buildpacksDir));
    detect = true;
  }
  const paths: string[] = [];
  for (const [i, ref] of refs.entries()) {
    if (ref.kind === 'bundled') {
      paths.push(`${BUILD_PATHS.buildpacks}/${ref.name}`);
    } else if (ref.kind === 'local') {
      // Copied, not mounted: the copy is handed to the build's user with the rest of the scratch dir, whoever may read the original.
      const name = `${i}-${path.basename(ref.path)}`;
      await cp(ref.path, path.join(host.custom, name), { recursive: true });
      paths.push(`${BUILD_PATHS.custom}/${name}`);
    } else {
      const name = `${i}-${path.basename(ref.url).replace(/\.git$/, '') || 'buildpack'}`;
      emit(`-----> Fetching buildpack ${ref.url}${ref.ref ? `#${ref.ref}` : ''}`);
      await cloneBuildpack(ref, path.join(host.custom, name), options.signal);
      paths.push(`${BUILD_PATHS.custom}/${name}`);
    }
  }
  return { paths, detect };
}

function formatBytes(n: number): string {
  return n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MB` : `${(n / 1024).toFixed(1)} kB`;
}


