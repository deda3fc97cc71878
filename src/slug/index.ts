/**
 * Slug builder and slug runner (Flynn's slugbuilder / slugrunner): turn an app's source into a
 * slug with Heroku buildpacks, store it in shelf, and start its processes.
 *
 * ```ts
 * import { buildSlug, DockerBuildExecutor, slugRunnerCommand } from 'flynn-ts/slug';
 * import { ShelfClient } from 'flynn-ts/shelf';
 * const result = await buildSlug({ source: tarStream, app: 'hello', env: {}, executor: new DockerBuildExecutor(),
 *   shelf: new ShelfClient({ url }), onOutput: (line) => console.log(line) });
 * // job: cmd slugRunnerCommand('web'), env { SLUG_URL: result.slugUrl, PORT: '8080' }
 * ```
 * @module
 */
export { buildSlug, cachePath } from './builder.js';
export { prepareSlugBuild, SlugBuildPreparation } from './build-preparation.js';
export type { BuildSlugOptions } from './builder.js';
export type { PrepareSlugBuildOptions } from './build-preparation.js';
export type { BuildResult, ProcessTypes, SlugShelf } from './types.js';
export { SLUG_DEFAULTS, BUILD_PATHS, PROCESS_TYPES_FILE } from './types.js';
export type { BuildExecutor, BuildJob, BuildJobResult, BuildJobSetup, BuildMount, PreparedBuildJob } from './executor.js';
export { LineSplitter } from './executor.js';
export { DockerBuildExecutor, DOCKER_EXECUTOR_DEFAULTS } from './docker-executor.js';
export type { DockerBuildExecutorOptions } from './docker-executor.js';
export { ProcessBuildExecutor, PROCESS_EXECUTOR_DEFAULTS } from './process-executor.js';
export type { ProcessBuildExecutorOptions } from './process-executor.js';
export { createBuildExecutor } from './create.js';
export type { BuildExecutorConfig } from './create.js';
export { SLUG_RUNNER_SOURCE, slugRunnerCommand, slugRunnerExec } from './runner.js';
export { parseProcfile, parseRelease } from './procfile.js';
export { applySlugignore, packDir, unpackTar } from './archive.js';
export { bundledBuildpacksDir, parseBuildpackRef, findNpmDir } from './buildpack-source.js';
export type { BuildpackRef } from './buildpack-source.js';
export { SLUG_TRACE_CHANNEL } from './trace.js';
export { SlugErrorCodes, SlugInputError, BuildFailedError } from './errors.js';
