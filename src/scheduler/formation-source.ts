import type { Formation } from './types.js';

/** What a formation watcher hears: one `current`, then changes. */
export type FormationEvent =
  | { type: 'current'; formations: Formation[] }
  | { type: 'put'; formation: Formation }
  | { type: 'delete'; app: string; release: string };

/**
 * Desired state, as the scheduler reads it. The controller implements it over its store; tests and
 * the embedded cluster use {@link MemoryFormationSource}. Like Flynn's router store: list + watch.
 */
export interface FormationSource {
  /** Every formation now. */
  list(): Promise<Formation[]>;
  /** `current` first, then every put/delete; ends when `signal` aborts. */
  watch(options?: { signal?: AbortSignal }): AsyncIterable<FormationEvent>;
}
