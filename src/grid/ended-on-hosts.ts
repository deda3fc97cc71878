/**
 * The ended jobs of an app as its hosts keep them on disk (host/ended-jobs.ts): they outlive the
 * runner's memory ({@link EndedJobs}) and a platform restart, as flynn-host's state DB did.
 */
import type { Job } from '../controller/types.js';
import type { Job as HostJob } from '../host/types.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import type { ScheduledJob } from '../scheduler/types.js';
import type { HostClients } from './host-clients.js';
import { toJob } from './job-view.js';

/** An ended job of a host: as the scheduler would see it (for logs) and as the controller lists it. */
export interface HostEndedJob {
  scheduled: ScheduledJob;
  listed: Job;
}

/** The app's ended jobs on every host the scheduler knows (a host that does not answer is left out). */
export async function endedOnHosts(scheduler: Pick<Scheduler, 'view'>, hosts: HostClients, appId: string, options: { signal?: AbortSignal } = {}): Promise<HostEndedJob[]> {
  const lists = await Promise.all(scheduler.view().hosts.map((h) => endedOnHost(hosts, h.id, options).catch(() => [] as HostEndedJob[])));
  return lists
    .flat()
    .filter((e) => e.scheduled.app === appId)
    .sort((a, b) => (a.listed.endedAt ?? '').localeCompare(b.listed.endedAt ?? ''));
}

/** Every ended job one host keeps, of every app; rejects when the host does not answer. */
export async function endedOnHost(hosts: HostClients, hostId: string, options: { signal?: AbortSignal } = {}): Promise<HostEndedJob[]> {
  return (await hosts.get(hostId).listEndedJobs(options)).map((j) => fromHost(hostId, j));
}

function fromHost(hostId: string, j: HostJob): HostEndedJob {
  const scheduled: ScheduledJob = {
    id: j.id,
    hostId,
    app: j.app,
    release: j.release,
    type: j.type,
    state: j.state,
    oneOff: j.oneOff === true,
    restarts: 0,
    memoryBytes: j.limits.memoryBytes ?? 0,
    createdAt: Date.parse(j.createdAt),
    endedAt: Date.parse(j.updatedAt),
  };
  // A crashed job records its exit as an error too: only a failed start's is listed (its exit says the rest).
  const listed: Job = { ...toJob(scheduled), endedAt: j.updatedAt, ...(j.exit ? { exit: { ...j.exit } } : {}), ...(j.state === 'failed' && j.error ? { error: j.error.message } : {}) };
  return { scheduled, listed };
}
