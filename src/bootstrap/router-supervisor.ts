/**
 * Keep the detached router running while the platform runs: follow the router process over its
 * control socket, and when the connection closes without the platform stopping it (the process was
 * killed or crashed), start a new one on the same ports and feed it the current snapshot. The new
 * process serves its last saved snapshot as soon as it listens (router-child.ts).
 */
import { sleep } from '../common/lifecycle.js';
import type { Logger } from '../common/logger.js';
import { followRouter, type DetachedRouter } from './router-process.js';

export const ROUTER_SUPERVISOR_DEFAULTS = Object.freeze({
  /** Wait before a respawn that failed is tried again, in ms (doubled each time, up to 10 s). */
  retryMs: 500,
});

export interface RouterSupervisorOptions {
  router: DetachedRouter;
  options: { dataDir: string; logger: Logger };
  /** Called once a new router process answers: push it the current snapshot. */
  onRespawn: () => void;
  /** Default {@link ROUTER_SUPERVISOR_DEFAULTS}.retryMs. */
  retryMs?: number;
}

export interface RouterSupervisor {
  /** Stop following (before the router is stopped on purpose). */
  close(): void;
}

export function superviseRouter({ router, options, onRespawn, retryMs = ROUTER_SUPERVISOR_DEFAULTS.retryMs }: RouterSupervisorOptions): RouterSupervisor {
  const { dataDir, logger } = options;
  const stop = new AbortController();
  void (async () => {
    while (!stop.signal.aborted) {
      const how = await followRouter(dataDir, stop.signal).catch(() => 'closed' as const);
      if (how === 'closed') return;
      if (how === 'unsupported') {
        logger.warn('the router process cannot be followed (started by an older flynn-ts): it is not started again if it dies', { pid: router.pid });
        return;
      }
      const lost = router.pid;
      const diedAt = performance.now();
      logger.warn('the router process is gone; starting a new one on the same ports', { pid: lost });
      for (let wait = retryMs; !stop.signal.aborted; wait = Math.min(wait * 2, 10_000)) {
        try {
          const pid = await router.respawn();
          logger.warn('started the router process again', { pid, was: lost, ms: Math.round(performance.now() - diedAt) });
          onRespawn();
          break;
        } catch (err) {
          logger.error('cannot start the router process again; trying again', { error: (err as Error).message, inMs: wait });
          await sleep(wait, stop.signal).catch(() => undefined);
        }
      }
    }
  })();
  return { close: () => stop.abort() };
}
