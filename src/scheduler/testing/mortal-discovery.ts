/**
 * A discovery handle that can die like a process does: `die()` stops its heartbeats and watches
 * without unregistering, so its instances vanish only when their TTL runs out — what other
 * instances see when a scheduler or host agent is SIGKILLed. Shares a {@link MemoryRegistry} with
 * ordinary {@link MemoryDiscovery} handles.
 */
import { every } from '../../common/clock.js';
import { ClosedError } from '../../common/errors.js';
import type { Discovery, Registration, ServiceWatch, WatchOptions } from '../../discovery/discovery.js';
import { InstanceNotFoundError } from '../../discovery/errors.js';
import { MemoryDiscovery, type MemoryRegistry } from '../../discovery/memory-backend.js';
import type { Instance, RegisterOptions } from '../../discovery/types.js';
import { validateMeta, validateRegistration } from '../../discovery/validate.js';

export class MortalDiscovery implements Discovery {
  private readonly inner: MemoryDiscovery;
  private readonly life = new AbortController();
  private readonly timers = new Set<() => void>();
  private readonly owned = new Set<Registration>();

  constructor(private readonly registry: MemoryRegistry) {
    this.inner = new MemoryDiscovery({ registry });
  }

  /** True once `die()` was called. */
  get dead(): boolean {
    return this.life.signal.aborted;
  }

  /** Stop heartbeating and end every watch, leaving the registrations to expire. */
  die(): void {
    this.life.abort(new ClosedError('dead discovery handle'));
    for (const cancel of this.timers) cancel();
    this.timers.clear();
  }

  async register(options: RegisterOptions): Promise<Registration> {
    if (this.dead) throw new ClosedError('dead discovery handle');
    const valid = validateRegistration(options);
    const registry = this.registry;
    let instance: Instance = registry.add(valid);
    let resolveLost!: (err: Error) => void;
    const lost = new Promise<Error>((resolve) => (resolveLost = resolve));
    let done = false;
    const beat = () => {
      if (!registry.heartbeat(instance.service, instance.id)) {
        finish();
        resolveLost(new InstanceNotFoundError(instance.id));
      }
    };
    const timer = every(registry.clock, Math.max(100, Math.floor(valid.ttlMs / 3)), beat, { unref: true });
    this.timers.add(timer);
    const finish = () => {
      done = true;
      timer();
      this.timers.delete(timer);
      this.owned.delete(registration);
    };
    const unregister = async () => {
      if (done) return;
      finish();
      if (!this.dead) registry.remove(instance.service, instance.id);
    };
    const registration: Registration = {
      get instance() {
        return instance;
      },
      lost,
      setMeta: async (meta) => {
        if (done || this.dead) throw new InstanceNotFoundError(instance.id);
        instance = registry.setMeta(instance.service, instance.id, validateMeta(meta));
      },
      unregister,
      close: unregister,
      [Symbol.asyncDispose]: unregister,
    };
    this.owned.add(registration);
    return registration;
  }

  instances(service: string): Promise<Instance[]> {
    if (this.dead) return Promise.reject(new ClosedError('dead discovery handle'));
    return this.inner.instances(service);
  }

  leader(service: string): Promise<Instance | null> {
    if (this.dead) return Promise.reject(new ClosedError('dead discovery handle'));
    return this.inner.leader(service);
  }

  watch(service: string, options: WatchOptions = {}): ServiceWatch {
    const signal = options.signal ? AbortSignal.any([options.signal, this.life.signal]) : this.life.signal;
    return this.inner.watch(service, { signal });
  }

  async close(): Promise<void> {
    await Promise.all([...this.owned].map((r) => r.unregister()));
    await this.inner.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
