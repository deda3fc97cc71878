/**
 * The git receiver (Flynn's gitreceived + flynn-receive): `git push` over SSH into a bare
 * repository per app; a push to the deploy branch streams its build to the pusher and is rejected
 * when the deploy fails.
 * @module
 */
export { startGitReceiver, GIT_RECEIVER_DEFAULTS, GIT_TRACE_CHANNEL } from './receiver.js';
export type { GitReceiver, GitReceiverOptions, GitPlatform } from './receiver.js';
export type { DeploySource, OfferedKey, Push, PushPreparation, RefUpdate } from './types.js';
export { fingerprintOf, fingerprintOfKey, generatePrivateKey, publicKeyLine, loadOrCreateHostKey } from './keys.js';
export { GitErrorCodes, GitOptionsError, PushRejectedError } from './errors.js';
