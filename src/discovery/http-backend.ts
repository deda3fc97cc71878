import { FlynnError } from '../common/errors.js';
import { HttpJsonClient } from '../common/http/json-client.js';
import { parseSse } from '../common/http/sse.js';
import { errorFromStream } from '../common/http/stream-error.js';
import { every, systemClock, type Clock } from '../common/clock.js';
import { CloseGuard } from '../common/lifecycle.js';
import { silentLogger, type Logger } from '../common/logger.js';
import type { Discovery, Registration, ServiceWatch, WatchOptions } from './discovery.js';
import { DiscoveryErrorCodes, DiscoveryInputError, DiscoveryUnavailableError, InstanceNotFoundError } from './errors.js';
import { ServiceView } from './service-view.js';
import type { Instance, RegisterOptions, RegisterResponse, ServiceEvent } from './types.js';
import { openWatch } from './watch-handle.js';
import { registrationHandle } from './registration-handle.js';
import { validateRegistration, validateService } from './validate.js';

export interface HttpDiscoveryOptions {
  /** Base URL of a discovery server, e.g. `http://127.0.0.1:1111`. */
  url: string;
  /** The server's key, when it has one (sent as `Authorization: Bearer <key>`). */
  key?: string;
  /** Pause before re-opening a broken event stream or retrying a failed heartbeat, in ms. */
  retryDelayMs?: number;
  /** Default silent. */
  logger?: Logger;
  /** Time of the heartbeats and retry pauses. Default the system clock. */
  clock?: Clock;
}

export const HTTP_DISCOVERY_DEFAULTS = Object.freeze({
  /** Pause before reconnecting a watch, in ms. */
  retryDelayMs: 250,
});

/**
 * Discovery through a discovery server's HTTP API (`startDiscoveryServer`): what jobs and
 * processes without direct access to etcd use. Registrations heartbeat over HTTP; watches follow
 * the server's event stream and reconnect when it breaks, emitting what changed meanwhile.
 */
export class HttpDiscovery implements Discovery {
  private readonly client: HttpJsonClient;
  private readonly retryDelayMs: number;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly guard = new CloseGuard('http discovery');
  private readonly registrations = new Set<Registration>();
  private readonly watches = new Set<ServiceWatch>();

  constructor(options: HttpDiscoveryOptions) {
    let url: URL | undefined;
    try {
      url = new URL(options.url);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      throw new DiscoveryInputError(DiscoveryErrorCodes.INVALID_CONFIG, `invalid discovery server url ${JSON.stringify(options.url)}: expected e.g. http://127.0.0.1:1111`, { field: 'url' });
    }
    this.client = new HttpJsonClient({ url: options.url, ...(options.key === undefined ? {} : { key: options.key }) });
    this.retryDelayMs = options.retryDelayMs ?? HTTP_DISCOVERY_DEFAULTS.retryDelayMs;
    this.clock = options.clock ?? systemClock;
    this.logger = (options.logger ?? silentLogger).child({ component: 'discovery-http' });
  }

  async register(options: RegisterOptions): Promise<Registration> {
    this.guard.assertOpen();
    const valid = validateRegistration(options);
    const { service, ...body } = valid;
    const put = (meta = body.meta) => call(() => this.client.json<RegisterResponse>('PUT', `/services/${service}/instances`, { body: { ...body, meta } }));
    const res = await put();
    let instance = res.instance;
    const path = () => `/services/${service}/instances/${instance.id}`;
    let log = this.logger.child({ service, id: instance.id });
    let done = false;
    let registering = false;
    const lost = new Promise<Error>(() => {}); // like etcd leases, registrations are renewed rather than given up
    const stop = () => {
      done = true;
      stopHeartbeat();
      this.registrations.delete(registration);
    };
    // The server forgot the instance (it restarted, or our heartbeats stopped for its TTL): register
    // again. The server assigns ids, so the instance comes back under a new id.
    const registerAgain = async () => {
      registering = true;
      while (!done && !this.guard.closed) {
        try {
          const again = await put(instance.meta);
          if (done) {
            await this.client.json('DELETE', `/services/${service}/instances/${again.instance.id}`).catch(() => {});
            break;
          }
          instance = again.instance;
          log = this.logger.child({ service, id: instance.id });
          log.info('registered again');
          break;
        } catch (err) {
          log.debug('re-register failed; retrying', { err: (err as Error).message });
          await this.clock.sleep(this.retryDelayMs);
        }
      }
      registering = false;
    };
    const beat = () => {
      if (registering) return;
      this.client.json('POST', `${path()}/heartbeat`).catch((err: unknown) => {
        if (done || registering) return;
        if (err instanceof FlynnError && err.kind === 'not_found') {
          log.warn('server forgot the instance; registering again');
          void registerAgain();
        } else {
          log.debug('heartbeat failed; will retry', { err: (err as Error).message });
        }
      });
    };
    const stopHeartbeat = every(this.clock, res.heartbeatIntervalMs, beat, { unref: true });
    const unregister = async () => {
      if (done) return;
      stop();
      await call(() => this.client.json('DELETE', path())).catch((err: unknown) => {
        if (!(err instanceof InstanceNotFoundError)) throw err;
      });
    };
    const registration = registrationHandle({
      instance: () => ({ ...instance, meta: { ...instance.meta } }),
      lost,
      done: () => done,
      putMeta: async (meta) => {
        instance = (await call(() => this.client.json<{ instance: Instance }>('PATCH', path(), { body: { meta } }))).instance;
      },
      unregister,
    });
    this.registrations.add(registration);
    return registration;
  }

  async instances(service: string): Promise<Instance[]> {
    this.guard.assertOpen();
    validateService(service);
    return (await call(() => this.client.json<{ instances: Instance[] }>('GET', `/services/${service}/instances`))).instances;
  }

  async leader(service: string): Promise<Instance | null> {
    this.guard.assertOpen();
    validateService(service);
    return (await call(() => this.client.json<{ leader: Instance | null }>('GET', `/services/${service}/leader`))).leader;
  }

  watch(service: string, options: WatchOptions = {}): ServiceWatch {
    this.guard.assertOpen();
    validateService(service);
    const view = new ServiceView(service);
    const abort = new AbortController();
    const { queue, watch, follow: followSignal } = openWatch(this.watches, options.signal, () => abort.abort());
    const log = this.logger.child({ service, watch: true });

    const follow = async () => {
      let first = true;
      let lastId: string | undefined;
      while (!abort.signal.aborted) {
        try {
          // Resume where we left off: the server replays what we missed, or sends a fresh `current`.
          const headers: Record<string, string> = { accept: 'text/event-stream', ...(lastId === undefined ? {} : { 'last-event-id': lastId }) };
          const res = await this.client.stream('GET', `/services/${service}/events`, { signal: abort.signal, headers });
          for await (const sse of parseSse(res.body)) {
            if (sse.event === 'error') throw errorFromStream(sse.data);
            if (sse.id !== undefined) lastId = sse.id;
            const event = JSON.parse(sse.data) as ServiceEvent;
            const out: ServiceEvent[] = [];
            if (event.type === 'current') {
              // On reconnect the server starts again with `current`: emit only what changed meanwhile.
              if (first) {
                view.reset(event.instances);
                out.push(view.current());
                first = false;
              } else {
                out.push(...view.reset(event.instances));
              }
            } else if (event.type === 'up' || event.type === 'update') {
              out.push(...view.put(event.instance));
            } else if (event.type === 'down') {
              out.push(...view.remove(event.instance.id));
            } // `leader` is derived by the view from the changes above
            for (const e of out) queue.push(e);
          }
          log.debug('event stream ended; reconnecting');
        } catch (err) {
          if (abort.signal.aborted) return;
          log.debug('event stream failed; reconnecting', { err: (err as Error).message });
        }
        await this.clock.sleep(this.retryDelayMs, abort.signal).catch(() => {});
      }
    };
    void follow();
    followSignal();
    return watch;
  }

  close(): Promise<void> {
    return this.guard.close(async () => {
      for (const watch of [...this.watches]) watch.close();
      await Promise.all([...this.registrations].map((r) => r.unregister().catch(() => {})));
      await this.client.close();
    });
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Run a request, turning the server's discovery errors back into this module's classes. */
async function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (!(err instanceof FlynnError)) throw err;
    if (err.kind === 'invalid') throw new DiscoveryInputError(err.code, err.message, { detail: err.detail, cause: err });
    if (err.code === DiscoveryErrorCodes.INSTANCE_NOT_FOUND) throw new InstanceNotFoundError(String((err.detail as { id?: string } | undefined)?.id ?? '?'), { cause: err });
    if (err.kind === 'unavailable') throw new DiscoveryUnavailableError(err.message, { cause: err });
    throw err;
  }
}
