/**
 * A look again every 100 ms with a deadline, for what offers no event to wait on (a certificate a
 * router now serves, a file another process wrote): docs/decisions.md's rule for test timing.
 */
import { sleep } from '../../src/common/lifecycle.js';

/** `probe` again every 100 ms until it gives a value, or fail after `ms` naming `what`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const got = await probe();
    if (got !== undefined) return got;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}
