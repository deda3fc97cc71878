import type { Logger } from '../../common/logger.js';
import { httpProbe, tcpProbe } from '../outlier.js';
import type { RuntimeApi } from './runtime-api.js';

/** How often the servers' counters are read. */
export const EJECT_POLL_MS = 200;

const ANSWERS = ['hrsp_1xx', 'hrsp_2xx', 'hrsp_3xx', 'hrsp_4xx', 'hrsp_5xx', 'hrsp_other'];

/** A live server as the slots know it: where it listens and its route's health check, if any. */
export interface EjectTarget {
  addr: string;
  check?: { path: string; host: string; timeoutMs: number };
}

export interface EjectorOptions {
  ejectAfterFailures: number;
  baseEjectionMs: number;
  maxEjectionMs: number;
  connectTimeoutMs: number;
  logger: Logger;
  /** The live server `backend/server` (undefined once the slots retired it: a held server is then left alone). */
  target(key: string): EjectTarget | undefined;
}

interface Seen {
  errors: number;
  answers: number;
  /** Failures since its last answer. */
  streak: number;
  /** UP→DOWN transitions (`chkdown`), undefined right after a hold (leaving MAINT is not an ejection). */
  downs: number | undefined;
  /** Ejections in a row and when the last one began (ms epoch). */
  ejections: number;
  lastEjectedAt: number;
  /** Kept in MAINT until this timer probes it. */
  hold?: NodeJS.Timeout;
}

/**
 * Passive ejection on resets and refusals, with an interval that grows as on the node engine.
 *
 * HAProxy's `observe layer7` does not count an error that an L7 retry took over (the retry answered
 * from another server), so a backend that resets every request stayed in rotation. This reads the
 * servers' counters (`show stat`) every {@link EJECT_POLL_MS} and marks down (`set server … health
 * down`) a server whose connection and response errors (`econ`, `eresp`) grew by
 * `ejectAfterFailures` with no answer from it in between (any answer clears the count, as on the
 * node engine).
 *
 * Every UP→DOWN transition (`chkdown`: this ejection, `observe layer7`, a failed health check) is an
 * ejection. The first one in a while is HAProxy's: the server's check, every `baseEjectionMs`,
 * puts it back once it passes. One within `maxEjectionMs` of the last is held in MAINT for
 * `baseEjectionMs` doubled per ejection in a row (capped at `maxEjectionMs`), then probed from here
 * (the route's health check, else a TCP connect) and made ready only if the probe passes; else it
 * is held again, longer. A server is held only while another server of its backend is UP: with
 * none left, HAProxy's check brings it back as soon as it passes (the node engine then uses ejected
 * backends anyway).
 */
export class ResetEjector {
  /** `backend/server` → what the last polls saw. */
  private readonly seen = new Map<string, Seen>();
  private stopped = false;

  constructor(
    private readonly api: RuntimeApi,
    private readonly options: EjectorOptions,
  ) {}

  async poll(): Promise<void> {
    const lines = (await this.api.run('show stat -1 4 -1')).split('\n').filter((l) => l.trim() !== '');
    const header = lines.shift()?.replace(/^#\s*/, '').split(',') ?? [];
    const at = (name: string) => header.indexOf(name);
    const present = new Set<string>();
    // Servers UP per backend: a repeat ejection holds a server out only while another one serves (as the node engine
    // uses ejected backends when no other is left, a flapping single backend is not held out for longer and longer).
    const up = new Map<string, number>();
    for (const line of lines) {
      const f = line.split(',');
      if ((f[at('status')] ?? '').startsWith('UP')) up.set(f[at('pxname')] as string, (up.get(f[at('pxname')] as string) ?? 0) + 1);
    }
    for (const line of lines) {
      const f = line.split(',');
      const key = `${f[at('pxname')]}/${f[at('svname')]}`;
      present.add(key);
      const errors = Number(f[at('econ')]) + Number(f[at('eresp')]);
      const answers = ANSWERS.reduce((n, name) => n + (Number(f[at(name)]) || 0), 0);
      const downs = Number(f[at('chkdown')]) || 0;
      const status = f[at('status')] ?? '';
      const before = this.seen.get(key) ?? { errors, answers, streak: 0, downs, ejections: 0, lastEjectedAt: 0 };
      this.seen.set(key, before);
      // Counts that went down come from a new worker (a reload): they start over (a hold's MAINT is in the saved server state).
      if (errors < before.errors || answers < before.answers || (before.downs !== undefined && downs < before.downs)) Object.assign(before, { errors, answers, streak: 0, downs });
      if (before.hold) continue;
      const streak = answers > before.answers ? 0 : before.streak + (errors - before.errors);
      // UP→DOWN transitions since the last poll (a server may be back up by now: its check is every baseEjectionMs).
      const fresh = before.downs === undefined ? 0 : downs - before.downs;
      Object.assign(before, { errors, answers, streak, downs });
      const othersUp = (up.get(f[at('pxname')] as string) ?? 0) - (status.startsWith('UP') ? 1 : 0) > 0;
      if (status.startsWith('UP') && streak >= this.options.ejectAfterFailures) {
        this.options.logger.debug('haproxy engine: marking backend down', { server: key, failures: streak });
        before.streak = 0;
        await this.run(`set server ${key} health down`, key);
        // That transition is this ejection, not one to count at the next poll.
        before.downs = downs + 1;
        await this.ejected(key, before, othersUp);
      } else if (fresh > 0 && !status.startsWith('MAINT')) await this.ejected(key, before, othersUp);
    }
    for (const [key, s] of this.seen) {
      if (present.has(key)) continue;
      clearTimeout(s.hold);
      this.seen.delete(key);
    }
  }

  /** Forget every hold (the engine is stopping). */
  stop(): void {
    this.stopped = true;
    for (const s of this.seen.values()) clearTimeout(s.hold);
  }

  private async ejected(key: string, s: Seen, othersUp = true): Promise<void> {
    const { baseEjectionMs, maxEjectionMs, logger } = this.options;
    const now = Date.now();
    s.ejections = now - s.lastEjectedAt > maxEjectionMs ? 1 : s.ejections + 1;
    s.lastEjectedAt = now;
    const ms = othersUp ? Math.min(maxEjectionMs, baseEjectionMs * 2 ** Math.min(s.ejections - 1, 30)) : baseEjectionMs;
    logger.info('haproxy engine: backend ejected', { server: key, ejections: s.ejections, ms });
    // Only a route's server (the slots know it and its probe); TCP routes' servers keep HAProxy's own check.
    if (ms > baseEjectionMs && this.options.target(key) !== undefined) await this.hold(key, s, ms);
  }

  /** MAINT (its checks stop, so it cannot come back early) for `ms`, then probed. */
  private async hold(key: string, s: Seen, ms: number): Promise<void> {
    await this.run(`set server ${key} state maint`, key);
    s.hold = setTimeout(() => void this.release(key, s), ms);
    s.hold.unref();
  }

  private async release(key: string, s: Seen): Promise<void> {
    s.hold = undefined;
    const target = this.options.target(key);
    if (this.stopped || target === undefined) return;
    const colon = target.addr.lastIndexOf(':');
    const host = target.addr.slice(0, colon).replace(/^\[|\]$/g, '');
    const port = Number(target.addr.slice(colon + 1));
    const ok = target.check ? await httpProbe(host, port, target.check.host, target.check.path, target.check.timeoutMs) : await tcpProbe(host, port, this.options.connectTimeoutMs);
    if (this.stopped || this.options.target(key) === undefined) return;
    if (!ok) return this.ejected(key, s);
    // Leaving MAINT is not an ejection: the next poll takes chkdown afresh.
    s.downs = undefined;
    s.streak = 0;
    await this.run(`set server ${key} state ready`, key);
    this.options.logger.info('haproxy engine: backend back in rotation', { server: key });
  }

  /** A state change; its answer is empty when it worked (a server deleted meanwhile is not an error worth more than a line). */
  private async run(command: string, key: string): Promise<void> {
    const answer = await this.api.run(command).catch((err: unknown) => (err as Error).message);
    if (answer.trim() !== '') this.options.logger.warn('haproxy engine: cannot change server state', { server: key, command, answer: answer.trim() });
  }
}
