/** What a leader term is given (its options) and what it is asked to run (a one-off job request). */
import type { Clock } from '../common/clock.js';
import type { Logger } from '../common/logger.js';
import type { Discovery } from '../discovery/discovery.js';
import type { BackoffOptions } from './backoff.js';
import type { StateStore } from './backoff-ledger.js';
import type { FormationSource } from './formation-source.js';
import type { HostConnector } from './host-client.js';
import type { ProcessSpec, SchedulerEvent } from './types.js';

export interface TermOptions {
  schedulerId: string;
  discovery: Discovery;
  formations: FormationSource;
  connectHost: HostConnector;
  logger: Logger;
  resyncMs: number;
  hostRetryMs: number;
  hostReadyTimeoutMs: number;
  backoff: BackoffOptions;
  /** Where the crash backoff is kept across terms and restarts. */
  state: StateStore;
  /** Move running jobs to hosts that joined (see `plan`'s `rebalanceTo`). */
  rebalance: boolean;
  /** A host receives moved jobs only after it has been ready this long, ms. */
  rebalanceSettleMs: number;
  emit(event: SchedulerEvent): void;
  /** Time of every timer: crash backoff, resync, host settle, ready and retry waits. */
  clock: Clock;
  /** Called when the hosts changed (one joined, was listed, or was lost). */
  onHostsChange?(): void;
}

/** A one-off job request (`flynn run`). */
export interface OneOffRequest extends ProcessSpec {
  app: string;
  release: string;
  /** Shown as the job's type; default `run`. */
  type?: string;
  tags?: Record<string, string>;
  memoryBytes?: number;
}
