import type { Readable } from 'node:stream';

/**
 * What the builder needs from shelf. `ShelfClient` (flynn-ts/shelf) fits it; so does anything that
 * stores blobs by path and throws an error with `kind: 'not_found'` for a missing one.
 */
export interface SlugShelf {
  put(path: string, body: Readable, options?: { signal?: AbortSignal }): Promise<unknown>;
  get(path: string, options?: { signal?: AbortSignal }): Promise<{ body: Readable }>;
  /** The URL a runner fetches `path` from. */
  urlFor(path: string): string;
}

/** Process type name → shell command, e.g. `{ web: 'node server.js' }`. */
export type ProcessTypes = Record<string, string>;

export interface BuildResult {
  /** The slug's id (also its file name in shelf). */
  id: string;
  /** Where the slug is: pass it to the runner as `SLUG_URL`. */
  slugUrl: string;
  /** The slug's path in shelf: `/slugs/<app>/<id>.tgz`. */
  slugPath: string;
  /** Size of the gzipped slug in bytes. */
  slugBytes: number;
  /** The gzipped slug's sha256 (64 lowercase hex digits), hashed as it was packed: hosts check the slug they download against it. */
  slugSha256: string;
  /** The buildpacks' default process types, overridden type by type by the app's Procfile. */
  processTypes: ProcessTypes;
  /** Names of the buildpacks that compiled the app, in order. */
  buildpacks: string[];
  durationMs: number;
  /** Whether a build cache from an earlier build was restored. */
  cached: boolean;
}

export const SLUG_DEFAULTS = Object.freeze({
  /** Memory limit of the build job, in bytes (1 GiB). */
  memoryBytes: 1024 * 1024 * 1024,
  /** The build job is killed after this many milliseconds (15 minutes). */
  timeoutMs: 15 * 60_000,
  /** Lines of output kept for the error of a failed build. */
  failureOutputLines: 30,
});

/** Where things are inside the build job; the process executor maps them back to host paths. */
export const BUILD_PATHS = Object.freeze({
  build: '/tmp/build',
  cache: '/tmp/cache',
  env: '/tmp/env',
  meta: '/flynn/meta',
  home: '/flynn/home',
  buildpacks: '/flynn/buildpacks',
  custom: '/flynn/custom',
  npm: '/flynn/npm',
});

/** The file in a slug that records its process types, read by the slug runner. */
export const PROCESS_TYPES_FILE = '.flynn/process-types.json';

/**
 * The same process types as one file per type (`<dir>/<type>` holds its command), so the slug
 * runner's shell fast path can start a type without parsing JSON.
 */
export const PROCESS_COMMANDS_DIR = '.flynn/process-types';

