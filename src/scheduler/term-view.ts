/** What a leader term shows of itself (`Scheduler.view`): each host's load and readiness, each formation's jobs, blocks and pending restarts, the one-off jobs. */
import type { TrackedHost } from './hosts.js';
import type { PendingRestart, PlannedBlock } from './reconcile.js';
import { formationKey, LIVE_STATES, type Formation, type FormationView, type ScheduledJob, type SchedulerView } from './types.js';

export function termView(
  tracked: Iterable<TrackedHost>,
  jobs: ScheduledJob[],
  known: ReadonlyMap<string, Formation>,
  blocked: ReadonlyMap<string, PlannedBlock>,
  restarts: readonly PendingRestart[],
): Omit<SchedulerView, 'schedulerId' | 'leading'> {
  const hosts = [...tracked].map((h) => {
    const live = [...h.jobs.values()].filter((j) => LIVE_STATES.has(j.state));
    return {
      id: h.info.id,
      addr: h.info.addr,
      tags: { ...h.info.tags },
      memoryBytes: h.info.capacity.memoryBytes,
      reservedBytes: live.reduce((sum, j) => sum + j.memoryBytes, 0),
      ready: h.ready,
      jobs: live.length,
    };
  });
  const formations: FormationView[] = [...known.values()].map((f) => {
    const key = formationKey(f.app, f.release);
    return {
      app: f.app,
      release: f.release,
      processes: Object.entries(f.processes).map(([type, desired]) => ({
        type,
        desired,
        omni: f.omni?.includes(type) ?? false,
        jobs: jobs.filter((j) => !j.oneOff && j.app === f.app && j.release === f.release && j.type === type).map((j) => ({ ...j })),
        blocked: blocked.get(`${key}\u0000${type}`)?.count ?? 0,
        restartsPending: restarts.filter((r) => r.formationKey === key && r.type === type).length,
      })),
    };
  });
  return { hosts, formations, oneOff: jobs.filter((j) => j.oneOff).map((j) => ({ ...j })) };
}
