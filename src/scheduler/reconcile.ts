/**
 * The planner: compares desired formations with the jobs the hosts run and decides what to start,
 * what to stop and what cannot be placed. Pure: no I/O, no clock of its own, so one pass is a
 * function of its input and easy to test.
 */
import type { HostInfo } from './host-client.js';
import { ClusterLoad, tagsMatch } from './placement.js';
import { formationKey, type BlockedReason, type Formation, type ScheduledJob } from './types.js';

/** A crash restart waiting for its backoff delay. */
export interface PendingRestart {
  formationKey: string;
  type: string;
  /** For omni types: the host the replacement belongs on. */
  hostId?: string;
  /** Restart number of the replacement (1 for the first restart after a crash). */
  attempt: number;
  /** Not before this time, ms since the epoch. */
  dueAt: number;
  previousJobId: string;
}

export interface PlanInput {
  formations: ReadonlyMap<string, Formation>;
  /** Hosts whose job lists are known. */
  hosts: readonly HostInfo[];
  /** False while some host's jobs are still unknown: then nothing is started (it could be a duplicate). */
  placeable: boolean;
  /** Jobs in a live state (pending, starting, up) on the given hosts, one-offs included. */
  jobs: readonly ScheduledJob[];
  restarts: readonly PendingRestart[];
  now: number;
}

export interface PlannedStart {
  formation: Formation;
  type: string;
  hostId: string;
  restart?: PendingRestart;
}

export interface PlannedBlock {
  formation: Formation;
  type: string;
  count: number;
  reason: BlockedReason;
}

export interface Plan {
  starts: PlannedStart[];
  stops: { job: ScheduledJob; reason: 'scale' | 'removed' }[];
  blocked: PlannedBlock[];
  /** Restarts still waiting (neither started now nor dropped because the type was scaled down). */
  restarts: PendingRestart[];
  /** When the earliest waiting restart is due, if any. */
  wakeAt?: number;
}

/** Stop order for surplus jobs: not yet up first, then the newest. */
function surplusOrder(a: ScheduledJob, b: ScheduledJob): number {
  const rank = (j: ScheduledJob) => (j.state === 'up' ? 1 : 0);
  return rank(a) - rank(b) || b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1);
}

export function plan(input: PlanInput): Plan {
  const out: Plan = { starts: [], stops: [], blocked: [], restarts: [] };
  const load = new ClusterLoad(input.hosts);
  const groups = new Map<string, ScheduledJob[]>();
  for (const job of input.jobs) {
    load.add(job.hostId, formationKey(job.app, job.release), job.type, job.memoryBytes);
    if (job.oneOff) continue;
    const key = formationKey(job.app, job.release);
    const formation = input.formations.get(key);
    if (!formation) {
      out.stops.push({ job, reason: 'removed' });
      continue;
    }
    if (!((formation.processes[job.type] ?? 0) > 0)) {
      out.stops.push({ job, reason: 'scale' });
      continue;
    }
    const omni = formation.omni?.includes(job.type) ?? false;
    const gkey = groupKey(key, job.type, omni ? job.hostId : undefined);
    let group = groups.get(gkey);
    if (!group) groups.set(gkey, (group = []));
    group.push(job);
  }
  const restartsByGroup = new Map<string, PendingRestart[]>();
  for (const r of input.restarts) {
    const gkey = groupKey(r.formationKey, r.type, r.hostId);
    let list = restartsByGroup.get(gkey);
    if (!list) restartsByGroup.set(gkey, (list = []));
    list.push(r);
  }
  const blocked = new Map<string, PlannedBlock>();
  const block = (formation: Formation, type: string, reason: BlockedReason) => {
    const bkey = groupKey(formationKey(formation.app, formation.release), type, undefined);
    const b = blocked.get(bkey);
    if (b) {
      b.count++;
      if (reason === 'capacity') b.reason = reason;
    } else blocked.set(bkey, { formation, type, count: 1, reason });
  };

  const reconcileGroup = (formation: Formation, type: string, gkey: string, want: number, placeOn?: HostInfo) => {
    const key = formationKey(formation.app, formation.release);
    const jobs = groups.get(gkey) ?? [];
    const restarts = (restartsByGroup.get(gkey) ?? []).sort((a, b) => a.dueAt - b.dueAt);
    if (jobs.length >= want) {
      for (const job of [...jobs].sort(surplusOrder).slice(0, jobs.length - want)) out.stops.push({ job, reason: 'scale' });
      return;
    }
    const missing = want - jobs.length;
    const kept = restarts.slice(0, missing);
    const need = { formationKey: key, type, tags: formation.tags?.[type] ?? {}, memoryBytes: formation.memory?.[type] ?? 0 };
    const placeOne = (): { hostId: string } | { blocked: BlockedReason } => {
      if (!placeOn) return load.place(need);
      const fit = load.fits(placeOn, need);
      if (fit !== true) return { blocked: fit };
      load.add(placeOn.id, key, type, need.memoryBytes);
      return { hostId: placeOn.id };
    };
    for (const restart of kept) {
      if (restart.dueAt > input.now || !input.placeable) {
        out.restarts.push(restart);
        if (restart.dueAt > input.now) out.wakeAt = Math.min(out.wakeAt ?? Infinity, restart.dueAt);
        continue;
      }
      const placed = placeOne();
      if ('hostId' in placed) out.starts.push({ formation, type, hostId: placed.hostId, restart });
      else {
        out.restarts.push(restart);
        block(formation, type, placed.blocked);
      }
    }
    if (!input.placeable) return;
    for (let i = kept.length; i < missing; i++) {
      const placed = placeOne();
      if ('hostId' in placed) out.starts.push({ formation, type, hostId: placed.hostId });
      else block(formation, type, placed.blocked);
    }
  };

  for (const [key, formation] of input.formations) {
    for (const [type, count] of Object.entries(formation.processes)) {
      if (count <= 0) continue;
      if (formation.omni?.includes(type)) {
        const tags = formation.tags?.[type] ?? {};
        for (const host of input.hosts) reconcileGroup(formation, type, groupKey(key, type, host.id), tagsMatch(host.tags, tags) ? count : 0, host);
        // Restarts meant for hosts that are gone are dropped: the new host set decides.
        continue;
      }
      reconcileGroup(formation, type, groupKey(key, type, undefined), count);
    }
  }
  out.blocked = [...blocked.values()];
  return out;
}

function groupKey(key: string, type: string, hostId: string | undefined): string {
  return hostId === undefined ? `${key}\u0000${type}` : `${key}\u0000${type}\u0000${hostId}`;
}
