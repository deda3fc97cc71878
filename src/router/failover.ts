import type { Backend, ServicePool } from './backends.js';
import type { ProxyContext } from './proxy-context.js';
import { classify, type FailureKind } from './outlier.js';
import type { HttpRoute } from './types.js';

/** What each kind of failure answers when no other try is left. */
function answer(kind: FailureKind, backend: Backend, service: string): [number, string] {
  switch (kind) {
    case 'refused':
      return [503, `no backend of ${service} accepted the connection`];
    case 'connect-timeout':
      return [504, `no backend of ${service} accepted the connection in time`];
    case 'headers-timeout':
    case 'idle-timeout':
      return [504, `backend ${backend.addr} did not answer in time`];
    default:
      return [502, `backend ${backend.addr} failed before answering`];
  }
}

/** What a {@link Failover} drives: the exchange of one request or Upgrade. */
export interface FailoverTarget {
  send(backend: Backend, pinned: boolean): void;
  giveUp(status: number, message: string): void;
}

/**
 * The one failover path of HTTP requests and Upgrades, whatever carries them (undici, node:http):
 * which backend comes next after a failed try, and what the client gets when none is left.
 *
 * - Nothing was sent (refused, connect timeout): the next backend not tried yet, up to
 *   `maxAttempts` in all, for any method.
 * - Reset before any answer, on an idempotent request (`GET`/`HEAD`/`OPTIONS` without a body):
 *   again on a backend not tried yet, up to `maxAttempts` in all (as HAProxy's `retry-on
 *   empty-response`: during a deploy several old backends can be closing at once); when none is
 *   left, once more on the same (most likely a pooled connection it had just closed).
 * - Anything else (a timeout once the request was sent, a reset of a non-idempotent request):
 *   no retry: 504 for a timeout, 502 otherwise.
 *
 * Every failure is reported to the outlier detector, every answer clears the backend's count.
 */
export class Failover {
  /** The backends tried so far, made on the first failure (most requests need one try only). */
  private tried: Set<Backend> | undefined;
  private first: Backend | undefined;
  private resent = false;

  constructor(
    private readonly ctx: ProxyContext,
    private readonly route: HttpRoute,
    private readonly pool: ServicePool,
    private readonly idempotent: boolean,
    /** The exchange: sends one try, or answers the client when no try is left. */
    private readonly exchange: FailoverTarget,
  ) {}

  start(backend: Backend | undefined, pinned: boolean): void {
    if (!backend) return this.exchange.giveUp(503, `no live backend for ${this.route.service}`);
    this.first = backend;
    this.exchange.send(backend, pinned);
  }

  /** The backend answered (any status): it is healthy as far as connections go. */
  answered(backend: Backend): void {
    this.ctx.health.success(backend);
  }

  /** A try on `backend` failed before the client got any part of an answer. */
  failed(backend: Backend, err: Error & { code?: string }): void {
    const { ctx, route, pool } = this;
    const kind = classify(err);
    ctx.health.failure(backend, kind);
    const unsent = kind === 'refused' || kind === 'connect-timeout';
    const resend = !unsent && kind === 'reset' && this.idempotent;
    const tried = (this.tried ??= new Set(this.first ? [this.first] : []));
    if ((unsent || resend) && tried.size < ctx.maxAttempts) {
      const next = pool.pick(tried) ?? (resend && !this.resent && !backend.removed ? backend : undefined);
      if (next === backend) this.resent = true;
      if (next) {
        ctx.logger.debug('backend failed; trying again', { service: route.service, addr: backend.addr, next: next.addr, failure: kind, error: err.message });
        tried.add(next);
        return this.exchange.send(next, false);
      }
    }
    const [status, message] = answer(kind, backend, route.service);
    ctx.logger.warn('backend failed', { service: route.service, addr: backend.addr, failure: kind, status, error: err.message });
    this.exchange.giveUp(status, message);
  }
}
