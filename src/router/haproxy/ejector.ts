import type { Logger } from '../../common/logger.js';
import type { RuntimeApi } from './runtime-api.js';

/** How often the servers' counters are read. */
export const EJECT_POLL_MS = 200;

const ANSWERS = ['hrsp_1xx', 'hrsp_2xx', 'hrsp_3xx', 'hrsp_4xx', 'hrsp_5xx', 'hrsp_other'];

/**
 * Passive ejection on resets and refusals. HAProxy's `observe layer7` does not count an error that
 * an L7 retry took over (the retry answered from another server), so a backend that resets every
 * request stayed in rotation. This reads the servers' counters (`show stat`) every
 * {@link EJECT_POLL_MS} and marks down (`set server … health down`) a server whose connection and
 * response errors (`econ`, `eresp`) grew by `ejectAfterFailures` with no answer from it in between
 * (any answer clears the count, as on the node engine); its check, every `baseEjectionMs`, puts it
 * back once it passes.
 */
export class ResetEjector {
  /** `backend/server` → its counters at the last poll and its failures since its last answer. */
  private readonly seen = new Map<string, { errors: number; answers: number; streak: number }>();

  constructor(
    private readonly api: RuntimeApi,
    private readonly ejectAfterFailures: number,
    private readonly logger: Logger,
  ) {}

  async poll(): Promise<void> {
    const lines = (await this.api.run('show stat -1 4 -1')).split('\n').filter((l) => l.trim() !== '');
    const header = lines.shift()?.replace(/^#\s*/, '').split(',') ?? [];
    const at = (name: string) => header.indexOf(name);
    const present = new Set<string>();
    for (const line of lines) {
      const f = line.split(',');
      const key = `${f[at('pxname')]}/${f[at('svname')]}`;
      present.add(key);
      const errors = Number(f[at('econ')]) + Number(f[at('eresp')]);
      const answers = ANSWERS.reduce((n, name) => n + (Number(f[at(name)]) || 0), 0);
      const before = this.seen.get(key);
      // Counts that went down come from a new worker (a reload): they start over.
      const fresh = before === undefined || errors < before.errors || answers < before.answers;
      const streak = fresh || answers > before.answers ? 0 : before.streak + (errors - before.errors);
      const up = (f[at('status')] ?? '').startsWith('UP');
      if (up && streak >= this.ejectAfterFailures) {
        this.logger.info('haproxy engine: backend ejected', { server: key, failures: streak });
        await this.api.run(`set server ${key} health down`).catch((err: unknown) => this.logger.warn('haproxy engine: cannot eject', { server: key, error: (err as Error).message }));
        this.seen.set(key, { errors, answers, streak: 0 });
      } else this.seen.set(key, { errors, answers, streak });
    }
    for (const key of this.seen.keys()) if (!present.has(key)) this.seen.delete(key);
  }
}
