import { randomUUID } from 'node:crypto';
import { every, systemClock, type Clock } from '../common/clock.js';
import { CloseGuard } from '../common/lifecycle.js';
import type { Discovery, Registration, ServiceWatch, WatchOptions } from './discovery.js';
import { InstanceNotFoundError } from './errors.js';
import { openWatch } from './watch-handle.js';
import type { Instance, RegisterOptions, ServiceEvent } from './types.js';
import { registrationHandle } from './registration-handle.js';
import { validateRegistration, validateService } from './validate.js';

interface Entry {
  instance: Instance;
  ttlMs: number;
  expiresAt: number;
}

export interface MemoryRegistryOptions {
  /** How often expired leases are swept out, ms. Default 100. */
  sweepIntervalMs?: number;
  /** Time of lease expiry, the sweep and its handles' heartbeats. Default the system clock; tests pass a `ManualClock`. */
  clock?: Clock;
}

/**
 * The state of an in-memory discovery: live instances with their lease expiry, and watchers.
 * Several {@link MemoryDiscovery} handles may share one registry (as clients share one etcd).
 */
export class MemoryRegistry {
  private readonly services = new Map<string, Map<string, Entry>>();
  private readonly watchers = new Map<string, Set<(event: ServiceEvent) => void>>();
  private readonly leaders = new Map<string, string | null>();
  private nextIndex = 1;
  private readonly stopSweeping: () => void;
  private readonly sweepIntervalMs: number;
  private lastSweepAt: number;
  readonly clock: Clock;

  constructor(options: MemoryRegistryOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.sweepIntervalMs = options.sweepIntervalMs ?? 100;
    this.lastSweepAt = this.clock.now();
    this.stopSweeping = every(this.clock, this.sweepIntervalMs, () => this.sweep(), { unref: true });
  }

  /**
   * Add an instance holding a lease of `options.ttlMs`. The lease lasts only while its owner calls
   * {@link heartbeat} within every TTL ({@link MemoryDiscovery} registrations do this on a timer);
   * an owner that stops — the one-process picture of a dead process — is swept out within its TTL
   * plus the sweep interval and watchers hear `down`. Takes validated options (`validateRegistration`).
   */
  add(options: Required<RegisterOptions>): Instance {
    const instance: Instance = {
      id: randomUUID(),
      service: options.service,
      addr: options.addr,
      proto: options.proto,
      meta: options.meta,
      index: this.nextIndex++,
    };
    let entries = this.services.get(instance.service);
    if (!entries) this.services.set(instance.service, (entries = new Map()));
    entries.set(instance.id, { instance, ttlMs: options.ttlMs, expiresAt: this.clock.now() + options.ttlMs });
    this.emit(instance.service, { type: 'up', service: instance.service, instance: copy(instance) });
    return copy(instance);
  }

  /** Extend an instance's lease. Returns false when it is gone (expired or removed). */
  heartbeat(service: string, id: string): boolean {
    const entry = this.services.get(service)?.get(id);
    if (!entry) return false;
    entry.expiresAt = this.clock.now() + entry.ttlMs;
    return true;
  }

  setMeta(service: string, id: string, meta: Record<string, string>): Instance {
    const entry = this.services.get(service)?.get(id);
    if (!entry) throw new InstanceNotFoundError(id);
    entry.instance = { ...entry.instance, meta: { ...meta } };
    entry.expiresAt = this.clock.now() + entry.ttlMs;
    this.emit(service, { type: 'update', service, instance: copy(entry.instance) });
    return copy(entry.instance);
  }

  remove(service: string, id: string): void {
    const entries = this.services.get(service);
    const entry = entries?.get(id);
    if (!entries || !entry) return;
    entries.delete(id);
    if (entries.size === 0) this.services.delete(service);
    this.emit(service, { type: 'down', service, instance: copy(entry.instance) });
  }

  list(service: string): Instance[] {
    return [...(this.services.get(service)?.values() ?? [])].map((e) => copy(e.instance)).sort((a, b) => a.index - b.index);
  }

  /** Subscribe to a service; `listener` first receives `current`. Returns the unsubscribe function. */
  subscribe(service: string, listener: (event: ServiceEvent) => void): () => void {
    const instances = this.list(service);
    listener({ type: 'current', service, instances, leader: instances[0] ?? null });
    let set = this.watchers.get(service);
    if (!set) this.watchers.set(service, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.watchers.delete(service);
    };
  }

  close(): void {
    this.stopSweeping();
  }

  private sweep(): void {
    const now = this.clock.now();
    // A sweep that runs late means this process stalled (a long GC or synchronous work on a loaded
    // machine): the owners in it could not heartbeat, nor could remote heartbeats be taken in, so
    // the stall does not count against anyone's TTL (no false expiry of a whole one-process cluster).
    const stalledMs = now - this.lastSweepAt - this.sweepIntervalMs;
    this.lastSweepAt = now;
    for (const [service, entries] of this.services) {
      for (const [id, entry] of entries) {
        if (stalledMs > this.sweepIntervalMs) entry.expiresAt += stalledMs;
        if (entry.expiresAt <= now) this.remove(service, id);
      }
    }
  }

  private emit(service: string, event: ServiceEvent): void {
    const listeners = [...(this.watchers.get(service) ?? [])];
    for (const listener of listeners) listener(event);
    const leader = this.list(service)[0] ?? null;
    const previous = this.leaders.get(service) ?? null;
    if ((leader?.id ?? null) !== previous) {
      if (leader) this.leaders.set(service, leader.id);
      else this.leaders.delete(service);
      for (const listener of listeners) listener({ type: 'leader', service, leader });
    }
  }
}

function copy(instance: Instance): Instance {
  return { ...instance, meta: { ...instance.meta } };
}

export interface MemoryDiscoveryOptions {
  /** Share state with other handles (and the registry's clock); by default the handle owns a fresh registry. */
  registry?: MemoryRegistry;
  /** The clock of a fresh registry (see {@link MemoryRegistryOptions}); ignored with `registry`. Default the system clock. */
  clock?: Clock;
}

/** Discovery in one process: the embedded default and the fast unit-test backend. */
export class MemoryDiscovery implements Discovery {
  private readonly registry: MemoryRegistry;
  private readonly ownsRegistry: boolean;
  private readonly guard = new CloseGuard('memory discovery');
  private readonly registrations = new Set<Registration>();
  private readonly watches = new Set<ServiceWatch>();

  constructor(options: MemoryDiscoveryOptions = {}) {
    this.ownsRegistry = options.registry === undefined;
    this.registry = options.registry ?? new MemoryRegistry(options.clock ? { clock: options.clock } : {});
  }

  async register(options: RegisterOptions): Promise<Registration> {
    this.guard.assertOpen();
    const valid = validateRegistration(options);
    const registry = this.registry;
    let instance = registry.add(valid);
    let resolveLost!: (err: Error) => void;
    const lost = new Promise<Error>((resolve) => (resolveLost = resolve));
    let done = false;
    const stopHeartbeat = every(
      registry.clock,
      Math.max(100, Math.floor(valid.ttlMs / 3)),
      () => {
        if (!registry.heartbeat(instance.service, instance.id)) {
          stop();
          resolveLost(new InstanceNotFoundError(instance.id));
        }
      },
      { unref: true },
    );
    const stop = () => {
      done = true;
      stopHeartbeat();
      this.registrations.delete(registration);
    };
    const unregister = async () => {
      if (done) return;
      stop();
      registry.remove(instance.service, instance.id);
    };
    const registration = registrationHandle({
      instance: () => instance,
      lost,
      done: () => done,
      putMeta: async (meta) => {
        instance = registry.setMeta(instance.service, instance.id, meta);
      },
      unregister,
    });
    this.registrations.add(registration);
    return registration;
  }

  async instances(service: string): Promise<Instance[]> {
    this.guard.assertOpen();
    return this.registry.list(validateService(service));
  }

  async leader(service: string): Promise<Instance | null> {
    return (await this.instances(service))[0] ?? null;
  }

  watch(service: string, options: WatchOptions = {}): ServiceWatch {
    this.guard.assertOpen();
    validateService(service);
    let unsubscribe = () => {};
    const { queue, watch, follow } = openWatch(this.watches, options.signal, () => unsubscribe());
    unsubscribe = this.registry.subscribe(service, (event) => queue.push(event));
    follow();
    return watch;
  }

  close(): Promise<void> {
    return this.guard.close(async () => {
      for (const watch of [...this.watches]) watch.close();
      await Promise.all([...this.registrations].map((r) => r.unregister()));
      if (this.ownsRegistry) this.registry.close();
    });
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
