import { AsyncQueue } from '../common/async-queue.js';
import type { FormationEvent, FormationSource } from './formation-source.js';
import { formationKey, type Formation } from './types.js';
import { validateFormation } from './validate.js';

/** Formations kept in memory: the embedded default and the tests' desired state. */
export class MemoryFormationSource implements FormationSource {
  private readonly formations = new Map<string, Formation>();
  private readonly watchers = new Set<AsyncQueue<FormationEvent>>();

  constructor(initial: Formation[] = []) {
    for (const f of initial) {
      const valid = validateFormation(f);
      this.formations.set(formationKey(valid.app, valid.release), valid);
    }
  }

  async list(): Promise<Formation[]> {
    return [...this.formations.values()];
  }

  /** Create or replace a formation (validated); watchers see `put`. */
  put(formation: Formation): Formation {
    const valid = validateFormation(formation);
    this.formations.set(formationKey(valid.app, valid.release), valid);
    this.emit({ type: 'put', formation: valid });
    return valid;
  }

  /** Change the counts of some types of an existing formation, e.g. `scale('web', 'v1', { web: 6 })`. */
  scale(app: string, release: string, processes: Record<string, number>): Formation {
    const current = this.formations.get(formationKey(app, release));
    if (!current) return this.put({ app, release, processes, spec: {} });
    return this.put({ ...current, processes: { ...current.processes, ...processes } });
  }

  /** Remove a formation; its jobs are stopped. Watchers see `delete`. */
  delete(app: string, release: string): void {
    if (this.formations.delete(formationKey(app, release))) this.emit({ type: 'delete', app, release });
  }

  watch(options: { signal?: AbortSignal } = {}): AsyncIterable<FormationEvent> {
    const onAbort = () => queue.end();
    const queue: AsyncQueue<FormationEvent> = new AsyncQueue<FormationEvent>(() => {
      this.watchers.delete(queue);
      options.signal?.removeEventListener('abort', onAbort);
    });
    queue.push({ type: 'current', formations: [...this.formations.values()] });
    if (options.signal?.aborted) queue.end();
    else {
      this.watchers.add(queue);
      options.signal?.addEventListener('abort', onAbort, { once: true });
    }
    return queue;
  }

  private emit(event: FormationEvent): void {
    for (const q of this.watchers) q.push(event);
  }
}
