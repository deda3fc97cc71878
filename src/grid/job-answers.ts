import { tracer } from '../common/trace.js';
import { until } from '../common/until.js';
import type { Discovery } from '../discovery/discovery.js';
import { portServes, readinessProof, waitUntilServing, type ReadinessProof } from '../host/readiness.js';
import type { ScheduledJob } from '../scheduler/types.js';
import type { HostClients } from './host-clients.js';

/** The job runner's phases (`job answers`) are published on this `node:diagnostics_channel` as `{ phase, app, jobId }`. */
export const JOBS_TRACE_CHANNEL = 'flynn-ts:jobs';
const trace = tracer(JOBS_TRACE_CHANNEL);

export interface JobAnswersOptions {
  hosts: HostClients;
  discovery?: Pick<Discovery, 'instances' | 'watch'> | undefined;
  /** Timeout of one readiness probe (a TCP connect to a job's first port), in ms. */
  probeTimeoutMs: number;
}

/**
 * Whether a job the scheduler runs is up by the one definition of host/readiness.ts
 * ({@link readinessProof}): proven by its service's registration in discovery when it has one (the
 * router routes to exactly those), else by its first port serving. Remembered once true.
 */
export class JobAnswers {
  private readonly answering = new Set<string>();

  constructor(private readonly options: JobAnswersOptions) {}

  /** Whether the job answers now (one check). */
  async check(job: ScheduledJob): Promise<boolean> {
    if (this.answering.has(job.id)) return true;
    try {
      const proof = await this.proof(job);
      let ok: boolean;
      if (proof.kind === 'runs') ok = true;
      else if (proof.kind === 'registered') ok = (await this.discovery.instances(proof.service)).some((i) => i.meta.jobId === job.id);
      else ok = await portServes(this.options.hosts.advertiseHost(job.hostId), proof.hostPort, { connectTimeoutMs: this.options.probeTimeoutMs });
      if (ok) this.mark(job);
      return ok;
    } catch {
      return false;
    }
  }

  /** Resolve once the job answers: on its registration in discovery, or once its port serves. */
  async wait(job: ScheduledJob, signal: AbortSignal): Promise<void> {
    if (this.answering.has(job.id)) return;
    const proof = await this.proof(job, signal);
    if (proof.kind === 'registered') {
      const service = proof.service;
      await until(
        (s) => this.discovery.watch(service, { signal: s }),
        (ev) => (ev.type === 'current' ? ev.instances.some((i) => i.meta.jobId === job.id) : (ev.type === 'up' || ev.type === 'update') && ev.instance.meta.jobId === job.id),
        { signal },
      );
    } else if (proof.kind === 'serves') {
      if (!(await waitUntilServing(this.options.hosts.advertiseHost(job.hostId), proof.hostPort, () => !signal.aborted))) return;
    }
    this.mark(job);
  }

  private get discovery(): Pick<Discovery, 'instances' | 'watch'> {
    return this.options.discovery as Pick<Discovery, 'instances' | 'watch'>;
  }

  private async proof(job: ScheduledJob, signal?: AbortSignal): Promise<ReadinessProof> {
    const hostJob = await this.options.hosts.get(job.hostId).getJob(job.id, signal ? { signal } : {});
    return readinessProof(hostJob, { discovery: this.options.discovery !== undefined });
  }

  private mark(job: ScheduledJob): void {
    if (this.answering.has(job.id)) return;
    if (this.answering.size > 10_000) this.answering.clear();
    this.answering.add(job.id);
    trace('job answers', { app: job.app, jobId: job.id });
  }

  has(jobId: string): boolean {
    return this.answering.has(jobId);
  }
}
