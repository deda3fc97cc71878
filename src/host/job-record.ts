/** What the host agent keeps of each job: the job, its registrations, when it started and ended; and copies of a job to hand out. */
import type { Registration } from '../discovery/discovery.js';
import type { Job, LogLine } from './types.js';

export interface JobRecord {
  job: Job;
  /** Settles when `createJob` has finished starting the job (either way). */
  started: Promise<void>;
  markStarted: () => void;
  services: Registration[];
  ended: Promise<void>;
  markEnded: () => void;
  /** Cancels the removal of the ended job. */
  cancelRemoval?: () => void;
}

export function newJobRecord(job: Job): JobRecord {
  let markEnded = () => {};
  let markStarted = () => {};
  const ended = new Promise<void>((resolve) => (markEnded = resolve));
  const started = new Promise<void>((resolve) => (markStarted = resolve));
  return { job, services: [], ended, markEnded, started, markStarted };
}

export function copyJob(job: Job): Job {
  const out: Job = {
    ...job,
    cmd: [...job.cmd],
    env: { ...job.env },
    ports: job.ports.map((p) => ({ ...p })),
    boundPorts: job.boundPorts.map((p) => ({ ...p })),
    limits: { ...job.limits },
    meta: { ...job.meta },
  };
  if (job.volumes) out.volumes = job.volumes.map((v) => ({ ...v }));
  if (job.exit) out.exit = { ...job.exit };
  if (job.error) out.error = { ...job.error };
  return out;
}

/** A job that failed to start: its error as its one stderr line, so `flynn log` and a failed deploy show why (none otherwise). */
export function startFailureLines(job: Job): LogLine[] {
  return job.state === 'failed' && job.error ? [{ stream: 'stderr', line: job.error.message, time: job.updatedAt }] : [];
}
