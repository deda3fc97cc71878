/**
 * The receiver (Flynn's flynn-receiver): what a `git push` becomes on a cluster. Its
 * {@link ControllerGitPlatform} builds the pushed tree (a slug, or an image from a Dockerfile),
 * creates the artifact and release, deploys and waits, all through the controller's API, so it
 * can run beside the git receiver in a process of its own.
 *
 * ```ts
 * import { startGitReceiver } from 'flynn-ts/git';
 * import { ControllerGitPlatform } from 'flynn-ts/receiver';
 * const platform = new ControllerGitPlatform({ client, shelf, executor, domain: 'flynn.local' });
 * const git = await startGitReceiver({ platform, hostKey, reposDir });
 * ```
 * @module
 */
export { ControllerGitPlatform, CONTROLLER_GIT_PLATFORM_DEFAULTS, appUrl } from './controller-platform.js';
export type { ControllerGitPlatformOptions } from './controller-platform.js';
export { DEPLOY_TRACE_CHANNEL } from './trace.js';
