import { request } from 'node:http';
import { connect } from 'node:net';
import type { Logger } from '../common/logger.js';
import type { Backend } from './backends.js';

/** How a try on a backend failed, as far as failover and ejection care. */
export type FailureKind =
  /** The backend did not accept the connection (refused, unreachable): nothing was sent. */
  | 'refused'
  /** The connection was not up within the connect timeout: nothing was sent. */
  | 'connect-timeout'
  /** The connection was reset or closed before an answer: the request may have been seen. */
  | 'reset'
  /** No response head within the response-headers timeout. */
  | 'headers-timeout'
  /** A body (either direction) stalled longer than the idle timeout. */
  | 'idle-timeout'
  /** Anything else (a malformed answer...). */
  | 'other';

const REFUSED = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);
const RESET = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'ECONNABORTED']);

/** Classify a socket, node:http or undici error (the router's own timeouts carry their kind as `code`). */
export function classify(err: Error & { code?: string }): FailureKind {
  const code = err.code ?? '';
  if (REFUSED.has(code)) return 'refused';
  if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'connect-timeout') return 'connect-timeout';
  if (RESET.has(code)) return 'reset';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'headers-timeout') return 'headers-timeout';
  if (code === 'UND_ERR_BODY_TIMEOUT' || code === 'idle-timeout') return 'idle-timeout';
  return 'other';
}

export interface OutlierOptions {
  logger: Logger;
  ejectAfterFailures: number;
  baseEjectionMs: number;
  maxEjectionMs: number;
  connectTimeoutMs: number;
  /** Counts failures and ejections when the router serves metrics. */
  counters?: { failure(backend: string, kind: string): void; ejection(backend: string): void };
}

/**
 * Passive health checking (Envoy's outlier detection, HAProxy's `observe layer4`): a backend that
 * refuses or times out, or fails `ejectAfterFailures` times in a row, leaves the balancer for an
 * interval that doubles with each ejection (reset once it stayed in for `maxEjectionMs`). When the
 * interval ends the router probes it with a TCP connect; it gets traffic again only once a probe
 * succeeds, else it is ejected again for longer. The balancer still uses ejected backends when no
 * other is left (Envoy's panic mode), so ejection never turns a degraded service into a 503.
 */
export class OutlierDetector {
  constructor(private readonly options: OutlierOptions) {}

  success(backend: Backend): void {
    backend.failures = 0;
  }

  failure(backend: Backend, kind: FailureKind): void {
    if (backend.ejected || backend.removed) return;
    this.options.counters?.failure(backend.addr, kind);
    backend.failures++;
    const now = kind === 'refused' || kind === 'connect-timeout' || kind === 'headers-timeout';
    if (now || backend.failures >= this.options.ejectAfterFailures) this.begin(backend, kind);
  }

  /** Take a backend out of rotation now (a failed active health check). */
  eject(backend: Backend, reason: string): void {
    if (!backend.ejected && !backend.removed) this.begin(backend, reason);
  }

  private begin(backend: Backend, reason: string): void {
    const { baseEjectionMs, maxEjectionMs } = this.options;
    const since = Date.now() - backend.lastEjectedAt;
    backend.ejections = since > maxEjectionMs ? 1 : backend.ejections + 1;
    backend.lastEjectedAt = Date.now();
    backend.ejected = true;
    const ms = Math.min(maxEjectionMs, baseEjectionMs * 2 ** Math.min(backend.ejections - 1, 30));
    this.options.logger.info('backend ejected', { addr: backend.addr, reason, ms });
    this.options.counters?.ejection(backend.addr);
    setTimeout(() => void this.probe(backend), ms).unref();
  }

  private async probe(backend: Backend): Promise<void> {
    if (backend.removed) return;
    const check = backend.check;
    const ok = check ? await httpProbe(backend.host, backend.port, check.host, check.path, check.timeoutMs) : await tcpProbe(backend.host, backend.port, this.options.connectTimeoutMs);
    if (backend.removed) return;
    if (!ok) return this.begin(backend, 'probe failed');
    backend.ejected = false;
    backend.failures = 0;
    this.options.logger.info('backend back in rotation', { addr: backend.addr });
  }
}

/** True when `GET path` answers 2xx/3xx within `timeoutMs`. */
export function httpProbe(host: string, port: number, hostHeader: string, path: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host, port, path, headers: { host: hostHeader, 'user-agent': 'flynn-router-health-check' }, agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 400);
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(false));
    req.end();
  });
}

/** True when a TCP connection to host:port opens within `timeoutMs`. */
export function tcpProbe(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
