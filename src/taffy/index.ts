/**
 * Taffy: deploy an app from a git URL through the platform's push deploy.
 *
 * ```ts
 * import { Taffy } from 'flynn-ts/taffy';
 * const taffy = new Taffy({ platform: controllerGitPlatform });
 * await taffy.deploy('web', { url: 'https://git.example.com/web.git', ref: 'main' }, { output: console.log, signal });
 * ```
 */
export { Taffy, TAFFY_DEFAULTS } from './taffy.js';
export type { TaffyOptions, TaffyPlatform } from './taffy.js';
export { checkGitSource, splitGitSource } from './git-url.js';
export type { CheckedGitSource, GitScheme } from './git-url.js';
export { TaffyErrorCodes, TaffySourceError, TaffyRefNotFoundError, TaffyFetchError } from './errors.js';
