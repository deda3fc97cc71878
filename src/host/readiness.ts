import { connect } from 'node:net';
import { sleep } from '../common/lifecycle.js';

export const READINESS_DEFAULTS = Object.freeze({
  /** How long one connect may take, in ms. */
  connectTimeoutMs: 1_000,
  /** How long an opened connection must stay open to count, in ms (see {@link portServes}). */
  settleMs: 150,
  /** First pause between probes, in ms; doubles up to `maxIntervalMs`. */
  intervalMs: 100,
  maxIntervalMs: 1_000,
});

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
 * from `intervalMs` to `maxIntervalMs` between probes.
 */
export async function waitUntilServing(host: string, port: number, stillWanted: () => boolean): Promise<boolean> {
  let interval: number = READINESS_DEFAULTS.intervalMs;
  while (stillWanted()) {
    if (await portServes(host, port)) return stillWanted();
    await sleep(interval);
    interval = Math.min(interval * 2, READINESS_DEFAULTS.maxIntervalMs);
  }
  return false;
}
