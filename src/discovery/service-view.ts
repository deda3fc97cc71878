import type { Instance, ServiceEvent } from './types.js';

/**
 * A watcher's picture of one service: the live instances by id and who leads. Backends feed it
 * changes (or a whole fresh list after a reconnect) and get back the events to emit, so every
 * backend derives `up` / `update` / `down` / `leader` the same way.
 */
export class ServiceView {
  private readonly byId = new Map<string, Instance>();
  private leaderId: string | null = null;

  constructor(readonly service: string) {}

  /** Live instances, oldest (lowest index) first. */
  get instances(): Instance[] {
    return [...this.byId.values()].sort((a, b) => a.index - b.index);
  }

  get leader(): Instance | null {
    return this.instances[0] ?? null;
  }

  /** The `current` event for the present state; also marks its leader as announced. */
  current(): ServiceEvent {
    const instances = this.instances.map(copy);
    const leader = instances[0] ?? null;
    this.leaderId = leader?.id ?? null;
    return { type: 'current', service: this.service, instances, leader };
  }

  /** An instance appeared or changed: `up` or `update` (nothing if unchanged), then `leader` if it moved. */
  put(instance: Instance): ServiceEvent[] {
    const before = this.byId.get(instance.id);
    if (before && same(before, instance)) return [];
    this.byId.set(instance.id, copy(instance));
    const event: ServiceEvent = { type: before ? 'update' : 'up', service: this.service, instance: copy(instance) };
    return [event, ...this.leaderChange()];
  }

  /** An instance went: `down`, then `leader` if it moved. Unknown ids give nothing. */
  remove(id: string): ServiceEvent[] {
    const before = this.byId.get(id);
    if (!before) return [];
    this.byId.delete(id);
    return [{ type: 'down', service: this.service, instance: before }, ...this.leaderChange()];
  }

  /** Replace the whole picture (after a reconnect or a compacted watch) and return the difference as events. */
  reset(instances: Instance[]): ServiceEvent[] {
    const events: ServiceEvent[] = [];
    const fresh = new Set(instances.map((i) => i.id));
    for (const id of [...this.byId.keys()]) {
      if (!fresh.has(id)) {
        const before = this.byId.get(id) as Instance;
        this.byId.delete(id);
        events.push({ type: 'down', service: this.service, instance: before });
      }
    }
    for (const instance of instances) {
      const before = this.byId.get(instance.id);
      if (before && same(before, instance)) continue;
      this.byId.set(instance.id, copy(instance));
      events.push({ type: before ? 'update' : 'up', service: this.service, instance: copy(instance) });
    }
    return [...events, ...this.leaderChange()];
  }

  private leaderChange(): ServiceEvent[] {
    const leader = this.leader;
    if ((leader?.id ?? null) === this.leaderId) return [];
    this.leaderId = leader?.id ?? null;
    return [{ type: 'leader', service: this.service, leader: leader ? copy(leader) : null }];
  }
}

function copy(instance: Instance): Instance {
  return { ...instance, meta: { ...instance.meta } };
}

function same(a: Instance, b: Instance): boolean {
  return a.addr === b.addr && a.proto === b.proto && a.index === b.index && JSON.stringify(a.meta) === JSON.stringify(b.meta);
}
