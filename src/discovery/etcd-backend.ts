import { randomUUID } from 'node:crypto';
import { Etcd3, type IKeyValue, type IOptions, type Lease, type Watcher } from 'etcd3';
import { systemClock, type Clock } from '../common/clock.js';
import { CloseGuard } from '../common/lifecycle.js';
import { silentLogger, type Logger } from '../common/logger.js';
import type { Discovery, Registration, ServiceWatch, WatchOptions } from './discovery.js';
import { DiscoveryErrorCodes, DiscoveryInputError, DiscoveryUnavailableError } from './errors.js';
import { ServiceView } from './service-view.js';
import type { Instance, RegisterOptions, ServiceEvent } from './types.js';
import { openWatch } from './watch-handle.js';
import { etcdClientOptions, etcdErrorLine, type EtcdCredentials } from './etcd-credentials.js';
import { registrationHandle } from './registration-handle.js';
import { validateRegistration, validateService } from './validate.js';

export interface EtcdDiscoveryOptions {
  /** etcd v3 client endpoints, e.g. `['http://127.0.0.1:2379']`. */
  endpoints: string[];
  /** Key prefix every key lives under. Default {@link ETCD_DISCOVERY_DEFAULTS}.prefix. */
  prefix?: string;
  /** Pause between attempts to re-register a lost lease or re-open a failed watch, in ms. */
  retryDelayMs?: number;
  /** TLS and/or user/password for etcd. Default none. */
  credentials?: EtcdCredentials;
  /** Default silent. */
  logger?: Logger;
  /** Time of the retry pauses (lease TTLs are etcd's own). Default the system clock. */
  clock?: Clock;
}

export const ETCD_DISCOVERY_DEFAULTS = Object.freeze({
  /** Keys are `<prefix>/services/<service>/<id>`. */
  prefix: '/flynn-ts',
  /** Pause between retries against an unreachable etcd, in ms. */
  retryDelayMs: 250,
  /** Longest pause before the client re-opens a broken watch stream, in ms. */
  maxWatchBackoffMs: 1_000,
});

/** What is stored under an instance's key (its `index` is the key's create revision). */
type StoredInstance = Omit<Instance, 'index'>;

/**
 * Discovery on etcd v3. Each registration holds one lease (TTL = `ttlMs` rounded UP to whole
 * seconds, etcd's unit) with the instance's key attached; the leader is the key with the lowest
 * create revision, which is also `Instance.index`. Watches start at the revision of their initial
 * list, so nothing between list and watch is lost; they resume from the last seen revision after a
 * disconnect, and re-list (emitting the difference) if that revision was compacted. A lease lost
 * while etcd was away is replaced (new lease, same id and key) as soon as etcd answers again.
 */
export class EtcdDiscovery implements Discovery {
  private readonly client: Etcd3;
  private readonly prefix: string;
  private readonly retryDelayMs: number;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly guard = new CloseGuard('etcd discovery');
  private readonly registrations = new Set<Registration>();
  private readonly watches = new Set<ServiceWatch>();

  constructor(options: EtcdDiscoveryOptions) {
    if (!Array.isArray(options.endpoints) || options.endpoints.length === 0 || !options.endpoints.every((e) => typeof e === 'string' && /^https?:\/\//.test(e))) {
      throw new DiscoveryInputError(DiscoveryErrorCodes.INVALID_CONFIG, `invalid etcd endpoints ${JSON.stringify(options.endpoints)}: expected URLs like http://127.0.0.1:2379`, { field: 'endpoints' });
    }
    const prefix = options.prefix ?? ETCD_DISCOVERY_DEFAULTS.prefix;
    if (typeof prefix !== 'string' || !/^\/?[A-Za-z0-9._\-/]*$/.test(prefix) || prefix.endsWith('/')) {
      throw new DiscoveryInputError(DiscoveryErrorCodes.INVALID_CONFIG, `invalid etcd prefix ${JSON.stringify(prefix)}: letters, digits, . _ - /, not ending in /`, { field: 'prefix' });
    }
    this.prefix = prefix;
    this.retryDelayMs = options.retryDelayMs ?? ETCD_DISCOVERY_DEFAULTS.retryDelayMs;
    this.clock = options.clock ?? systemClock;
    this.logger = (options.logger ?? silentLogger).child({ component: 'discovery-etcd' });
    this.client = new Etcd3({
      hosts: options.endpoints,
      ...etcdClientOptions(options.credentials),
      faultHandling: {
        watchBackoff: cappedBackoff(100, ETCD_DISCOVERY_DEFAULTS.maxWatchBackoffMs),
        // With one endpoint there is no other host to fail over to, and etcd3's default per-host
        // circuit breaker would refuse every call for 5 s after etcd comes back from a restart.
        ...(options.endpoints.length === 1 ? { host: () => passThroughPolicy } : {}),
      },
      // Reconnect quickly after an etcd restart instead of gRPC's default backoff of up to 2 minutes.
      grpcOptions: { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': ETCD_DISCOVERY_DEFAULTS.maxWatchBackoffMs },
    });
  }

  private serviceKey(service: string): string {
    return `${this.prefix}/services/${service}/`;
  }

  async register(options: RegisterOptions): Promise<Registration> {
    this.guard.assertOpen();
    const valid = validateRegistration(options);
    const ttlSeconds = Math.ceil(valid.ttlMs / 1000);
    const stored: StoredInstance = { id: randomUUID(), service: valid.service, addr: valid.addr, proto: valid.proto, meta: valid.meta };
    const key = this.serviceKey(valid.service) + stored.id;
    const log = this.logger.child({ service: stored.service, id: stored.id });

    let done = false;
    let lease: Lease;
    let index: number;
    let resolveLost!: (err: Error) => void;
    const lost = new Promise<Error>((resolve) => (resolveLost = resolve));

    const grantAndPut = async (): Promise<void> => {
      const next = this.client.lease(ttlSeconds, { autoKeepAlive: true });
      try {
        const res = await next.put(key).value(JSON.stringify(stored)).exec();
        // A fresh key's create revision is the put's revision; a key that survived keeps its own.
        const current = await this.client.get(key).exec();
        index = Number(current.kvs[0]?.create_revision ?? res.header.revision);
      } catch (err) {
        next.release();
        throw unavailable(err);
      }
      lease = next;
      lease.on('lost', (err) => {
        if (done || lease !== next) return;
        log.warn('lease lost; registering again', { err: err.message });
        void renew(next);
      });
    };

    const renew = async (old: Lease): Promise<void> => {
      old.release();
      while (!done && !this.guard.closed) {
        try {
          await grantAndPut();
          old.revoke().catch(() => {}); // the key now rides the new lease; drop the old one if it still exists
          if (done) {
            // unregistered while we were putting the key back: take it away again
            await lease.revoke().catch(() => lease.release());
            return;
          }
          log.info('registered again', { index });
          return;
        } catch (err) {
          log.debug('re-register failed; retrying', { err: (err as Error).message });
          await this.clock.sleep(this.retryDelayMs);
        }
      }
    };

    await grantAndPut();

    const unregister = async (): Promise<void> => {
      if (done) return;
      done = true;
      this.registrations.delete(registration);
      try {
        await lease.revoke();
      } catch (err) {
        // etcd away: the lease runs out on its own within its TTL
        log.warn('could not revoke lease; it will expire', { err: (err as Error).message });
        lease.release();
      }
    };
    const registration = registrationHandle({
      instance: () => ({ ...stored, meta: { ...stored.meta }, index }),
      lost,
      done: () => done,
      putMeta: async (meta) => {
        try {
          await lease.put(key).value(JSON.stringify({ ...stored, meta })).exec();
        } catch (err) {
          throw unavailable(err);
        }
        stored.meta = meta;
      },
      unregister,
    });
    void resolveLost; // etcd registrations are renewed rather than given up; `lost` stays pending
    this.registrations.add(registration);
    return registration;
  }

  async instances(service: string): Promise<Instance[]> {
    this.guard.assertOpen();
    return (await this.list(validateService(service))).instances;
  }

  async leader(service: string): Promise<Instance | null> {
    return (await this.instances(service))[0] ?? null;
  }

  private async list(service: string): Promise<{ instances: Instance[]; revision: bigint }> {
    let res;
    try {
      res = await this.client.getAll().prefix(this.serviceKey(service)).exec();
    } catch (err) {
      throw unavailable(err);
    }
    const instances = res.kvs.map(parseKv).filter((i): i is Instance => i !== undefined);
    return { instances: instances.sort((a, b) => a.index - b.index), revision: BigInt(res.header.revision) };
  }

  watch(service: string, options: WatchOptions = {}): ServiceWatch {
    this.guard.assertOpen();
    validateService(service);
    const view = new ServiceView(service);
    let watcher: Watcher | undefined;
    let ended = false;
    const { queue, watch, follow } = openWatch(this.watches, options.signal, () => {
      ended = true;
      watcher?.cancel().catch(() => {});
    });
    const log = this.logger.child({ service, watch: true });
    const emit = (events: ServiceEvent[]) => {
      for (const event of events) queue.push(event);
    };

    // List, then watch from the list's revision + 1. `first` emits `current`; later rounds (after a
    // compaction cancelled the watch) emit the difference.
    const sync = async (initial: boolean): Promise<void> => {
      let first = initial;
      while (!ended) {
        try {
          const { instances, revision } = await this.list(service);
          if (ended) return;
          if (first) {
            first = false;
            view.reset(instances);
            queue.push(view.current());
          } else {
            emit(view.reset(instances));
          }
          const w = await this.client.watch().prefix(this.serviceKey(service)).startRevision(String(revision + 1n)).create();
          if (ended) {
            await w.cancel().catch(() => {});
            return;
          }
          // etcd3 starts a watch at the revision it connected at; below the listed one, the cluster
          // went back (wiped or restored) between list and watch: list again.
          if (Number(w.lastRevision() ?? revision) < revision) {
            log.warn('etcd revision went backwards (cluster wiped or restored); listing again', { listed: String(revision), now: w.lastRevision() });
            await w.cancel().catch(() => {});
            continue;
          }
          watcher = w;
          w.on('put', (kv) => {
            const instance = parseKv(kv);
            if (instance) emit(view.put(instance));
          });
          w.on('delete', (kv) => emit(view.remove(kv.key.toString().slice(this.serviceKey(service).length))));
          w.on('disconnected', (err) => log.debug('watch disconnected; resuming', { err: err.message, from: w.lastRevision() }));
          // A cluster restored from an older backup, or wiped, counts revisions from further back:
          // whatever happened there before our resume point went unseen. List again.
          let resumeFrom: number | undefined;
          w.on('connecting', (req) => {
            const start = (req as { start_revision?: string | number }).start_revision; // etcd3 passes the create request
            resumeFrom = start === undefined ? undefined : Number(start);
          });
          w.on('connected', (res) => {
            const now = Number(res.header?.revision);
            if (ended || watcher !== w || resumeFrom === undefined || !(now < resumeFrom - 1)) return;
            log.warn('etcd revision went backwards (cluster wiped or restored); listing again', { resumeFrom, now });
            watcher = undefined;
            w.cancel().catch(() => {});
            void sync(false);
          });
          w.on('error', (err) => {
            // Cancelled by etcd, e.g. the revision to resume from was compacted: list again.
            if (ended || watcher !== w) return;
            log.warn('watch cancelled; listing again', { err: err.message });
            watcher = undefined;
            w.cancel().catch(() => {});
            void sync(false);
          });
          return;
        } catch (err) {
          log.debug('watch setup failed; retrying', { err: (err as Error).message });
          await this.clock.sleep(this.retryDelayMs);
        }
      }
    };
    void sync(true);
    follow();
    return watch;
  }

  close(): Promise<void> {
    return this.guard.close(async () => {
      for (const watch of [...this.watches]) watch.close();
      await Promise.all([...this.registrations].map((r) => r.unregister()));
      this.client.close();
    });
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

function parseKv(kv: IKeyValue): Instance | undefined {
  try {
    const stored = JSON.parse(kv.value.toString()) as StoredInstance;
    if (typeof stored.id !== 'string' || typeof stored.addr !== 'string') return undefined;
    return { id: stored.id, service: stored.service, addr: stored.addr, proto: stored.proto, meta: stored.meta ?? {}, index: Number(kv.create_revision) };
  } catch {
    return undefined; // not ours: ignore foreign keys under the prefix
  }
}

function unavailable(err: unknown): Error {
  if (err instanceof DiscoveryUnavailableError) return err;
  return new DiscoveryUnavailableError(`etcd unavailable: ${etcdErrorLine(err).replace(/^etcd: /, '')}`, { cause: err });
}

type HostPolicy = ReturnType<NonNullable<NonNullable<IOptions['faultHandling']>['host']>>;

/** A host fault policy that just runs the call (what cockatiel's `noop` policy does). */
const passThroughPolicy = {
  execute: <T>(fn: (context: { signal: AbortSignal }) => PromiseLike<T> | T, signal?: AbortSignal): Promise<T> =>
    Promise.resolve().then(() => fn({ signal: signal ?? new AbortController().signal })),
  onSuccess: () => ({ dispose() {} }),
  onFailure: () => ({ dispose() {} }),
} as unknown as HostPolicy;

/** An exponential backoff (as etcd3's watch manager expects) from `startMs` doubling up to `maxMs`. */
function cappedBackoff(startMs: number, maxMs: number): { duration: number; next(): ReturnType<typeof cappedBackoff> } {
  return {
    duration: startMs,
    next: () => cappedBackoff(Math.min(startMs * 2, maxMs), maxMs),
  };
}
