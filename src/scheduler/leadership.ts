/** Standing for leadership again and again: one term per won election, until closed. */
import type { Clock } from '../common/clock.js';
import type { Logger } from '../common/logger.js';
import type { Discovery } from '../discovery/discovery.js';
import { campaign, type Leadership } from '../discovery/election.js';

export interface LeadershipLoopOptions {
  discovery: Discovery;
  service: string;
  addr: string;
  meta: Record<string, string>;
  ttlMs: number;
  /** Wait before campaigning again after a discovery failure, ms. */
  retryMs: number;
  /** Time of the retry wait. */
  clock: Clock;
  logger: Logger;
  /**
   * Lead: called once per won term with a signal that aborts when the term ends (leadership lost
   * or the loop closed). Must return once the signal aborted and everything of the term is released.
   */
  lead(signal: AbortSignal, leadership: Leadership): Promise<void>;
}

/** Runs until `signal` aborts; on abort the current leader resigns so another instance takes over at once. */
export async function leadershipLoop(options: LeadershipLoopOptions, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    let leadership: Leadership;
    try {
      leadership = await campaign(options.discovery, {
        service: options.service,
        addr: options.addr,
        meta: options.meta,
        ttlMs: options.ttlMs,
        signal,
      });
    } catch (err) {
      if (signal.aborted) return;
      options.logger.warn('campaign failed', { error: (err as Error).message });
      await options.clock.sleep(options.retryMs, signal).catch(() => {});
      continue;
    }
    const term = new AbortController();
    const endTerm = () => term.abort();
    signal.addEventListener('abort', endTerm, { once: true });
    if (signal.aborted) term.abort(); // closed while the election was being won
    void leadership.lost.then(endTerm);
    try {
      await options.lead(term.signal, leadership);
    } catch (err) {
      options.logger.error('leader term failed', { error: (err as Error).message });
    } finally {
      term.abort();
      signal.removeEventListener('abort', endTerm);
      await leadership.resign().catch(() => {});
    }
  }
}
