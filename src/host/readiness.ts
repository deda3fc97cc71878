import { connect } from 'node:net';
import { sleep } from '../common/lifecycle.js';
import type { BoundPort } from './types.js';

export const READINESS_DEFAULTS = Object.freeze({
  /** How long one connect may take, in ms. */
  connectTimeoutMs: 1_000,
  /**
   * How long an opened connection must stay open to count, in ms (see {@link portServes}). Docker's
   * proxy closes a connection to a port nothing listens on within ~2 ms (measured on Docker 20.10),
   * so 50 ms leaves a wide margin on a loaded machine.
   */
  settleMs: 50,
  /** First pause between probes, in ms; grows by `backoff` up to `maxIntervalMs`. */
  intervalMs: 20,
  /** Factor the pause grows by after each failed probe. */
  backoff: 1.5,
  maxIntervalMs: 1_000,
});

export interface WaitUntilServingOptions {
  /**
   * Default {@link READINESS_DEFAULTS}.settleMs. Use 0 when nothing stands between the prober and
   * the job (no port-mapping proxy): then an accepted connection proves a listener.
   */
  settleMs?: number;
  /** Default {@link READINESS_DEFAULTS}.intervalMs. */
  intervalMs?: number;
  /** Default {@link READINESS_DEFAULTS}.maxIntervalMs. */
  maxIntervalMs?: number;
}

/**
 * Whether something really serves on `host:port`. A successful connect is not enough: Docker's
 * userland proxy accepts every connection on a published port and closes it at once when nothing
 * in the container listens (yet). So a port serves when a connection opens and stays open for
 * `settleMs` without being closed or reset by the other side.
 */
export function portServes(host: string, port: number, options: { connectTimeoutMs?: number; settleMs?: number } = {}): Promise<boolean> {
  const { connectTimeoutMs, settleMs } = { ...READINESS_DEFAULTS, ...options };
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: connectTimeoutMs });
    let timer: NodeJS.Timeout | undefined;
    const done = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => {
      socket.setTimeout(0);
      timer = setTimeout(() => done(true), settleMs);
    });
    socket.once('timeout', () => done(false));
    socket.once('error', () => done(false));
    socket.once('end', () => done(false));
    socket.once('close', () => done(false));
  });
}

/**
 * Probe `host:port` until it serves (true) or `stillWanted()` turns false (false), backing off
 * from `intervalMs` to `maxIntervalMs` between probes. The first pauses are short because a job
 * usually starts serving within a few hundred ms and every pause adds to a deploy's latency;
 * a refused probe costs one loopback connect.
 */
export function waitUntilServing(host: string, port: number, stillWanted: () => boolean, options: WaitUntilServingOptions = {}): Promise<boolean> {
  const settleMs = options.settleMs ?? READINESS_DEFAULTS.settleMs;
  return probeUntil(() => portServes(host, port, { settleMs }), stillWanted, options);
}

/** Run `probe` until it is true (true) or `stillWanted()` turns false (false), with the pauses of {@link waitUntilServing}. */
export async function probeUntil(probe: () => Promise<boolean>, stillWanted: () => boolean, options: Pick<WaitUntilServingOptions, 'intervalMs' | 'maxIntervalMs'> = {}): Promise<boolean> {
  const { intervalMs, maxIntervalMs } = { ...READINESS_DEFAULTS, ...options };
  let interval: number = intervalMs;
  while (stillWanted()) {
    if (await probe()) return stillWanted();
    await sleep(interval);
    interval = Math.min(interval * READINESS_DEFAULTS.backoff, maxIntervalMs);
  }
  return false;
}

/**
 * The one definition of "a job is up" in flynn-ts: its process runs and, when it has ports, its
 * first port really serves ({@link portServes}); a job without ports is up once it runs. The host
 * agent registers a port's service in discovery only once the port serves (see
 * {@link servesBeforeRegistering}), so for a port with a service, being registered proves it, and
 * is what the router sends traffic to. `readinessProof` says what proves a job up:
 * - `runs`: nothing more than running (no ports);
 * - `registered`: its first port's service lists the job (when discovery is at hand);
 * - `serves`: its first port serves on the host.
 *
 * Up is a state, not a promise: a job that answers once and then exits is crashed next. A wait that
 * tells a user jobs are up (`flynn scale`, controller/scale-wait.ts) also holds them up for a
 * moment, and fails on one that crashed.
 */
export type ReadinessProof = { kind: 'runs' } | { kind: 'registered'; service: string } | { kind: 'serves'; hostPort: number };

export function readinessProof(job: { boundPorts: readonly BoundPort[] }, options: { discovery: boolean }): ReadinessProof {
  const first = job.boundPorts[0];
  if (!first) return { kind: 'runs' };
  if (first.service && options.discovery) return { kind: 'registered', service: first.service };
  return { kind: 'serves', hostPort: first.hostPort };
}

/** Whether the agent waits for a port to serve before registering its service: TCP ports with a service. */
export function servesBeforeRegistering(port: Pick<BoundPort, 'service' | 'proto'>): boolean {
  return Boolean(port.service) && port.proto === 'tcp';
}
