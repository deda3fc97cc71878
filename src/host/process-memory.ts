/** The process runtime's memory watchdog: sums the RSS of each limited job's process group every `sampleMs` and SIGKILLs a group over its limit (`oom`). */
import type { Logger } from '../common/logger.js';
import { killGroup, killProcess, type ProcJob } from './process-job.js';
import { rssByGroup } from './proc-stat.js';

export class MemoryWatchdog {
  private sampler: NodeJS.Timeout | undefined;

  constructor(
    private readonly jobs: ReadonlyMap<string, ProcJob>,
    private readonly sampleMs: number,
    private readonly logger: Logger,
  ) {}

  /** Run the memory watchdog only while some running job has a memory limit. */
  update(): void {
    const needed = [...this.jobs.values()].some((p) => !p.exit && p.spec.job.limits.memoryBytes !== undefined);
    if (needed && !this.sampler) {
      this.sampler = setInterval(() => void this.sampleMemory(), this.sampleMs);
      this.sampler.unref();
    } else if (!needed && this.sampler) {
      clearInterval(this.sampler);
      this.sampler = undefined;
    }
  }

  private async sampleMemory(): Promise<void> {
    const limited = new Map<number, ProcJob>();
    for (const p of this.jobs.values()) if (!p.exit && !p.oom && p.spec.job.limits.memoryBytes !== undefined) limited.set(p.pgid, p);
    if (limited.size === 0) return;
    const rss = await rssByGroup(new Set(limited.keys()));
    for (const [pgid, { bytes, pids }] of rss) {
      const proc = limited.get(pgid);
      const limit = proc?.spec.job.limits.memoryBytes;
      if (!proc || limit === undefined || bytes <= limit || proc.exit) continue;
      this.logger.warn('job over its memory limit: killed', { jobId: proc.spec.job.id, rssBytes: bytes, limitBytes: limit });
      proc.oom = true;
      killGroup(pgid, 'SIGKILL');
      // A job on a pty is in a session of its own (pty-helper.ts).
      for (const pid of pids) killProcess(pid);
    }
  }

  stop(): void {
    if (this.sampler) clearInterval(this.sampler);
  }
}
