/**
 * The stack image for the suites that need it: `ensureStackImage` (idempotent: CI built it before
 * `npm test` with `npm run images`, a first local run builds it in a minute or two). In CI a stack
 * that cannot be had fails the suite; elsewhere the suite is skipped with the reason.
 */
import { ensureStackImage, type StackImage } from '../../src/host/stack-image.js';
import { needDocker } from '../support/services.js';

let pending: Promise<StackImage | string> | undefined;

/** The stack image, or undefined (with a warning) when it cannot be built outside CI. */
export async function needStackImage(suite: string): Promise<StackImage | undefined> {
  if (!(await needDocker(suite))) return undefined;
  pending ??= ensureStackImage({ onProgress: (line) => console.log(`[stack] ${line}`) }).catch((err: Error) => err.message);
  const got = await pending;
  if (typeof got !== 'string') return got;
  if (process.env.CI === 'true') throw new Error(`${suite}: the stack image cannot be built (${got}). CI must build it (npm run images).`);
  console.warn(`[skipped] ${suite}: the stack image cannot be built (${got}). Run \`npm run images\` to run it.`);
  return undefined;
}
