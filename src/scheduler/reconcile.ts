/**
 * The planner: compares desired formations with the jobs the hosts run and decides what to start,
 * what to stop and what cannot be placed. Pure: no I/O, no clock of its own, so one pass is a
 * function of its input and easy to test.
 */
import type { HostInfo } from './host-client.js';
import { ClusterLoad, tagsMatch } from './placement.js';
import { formationKey, type BlockedReason, type Formation, type ScheduledJob, type StopReason } from './types.js';

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

/**
 * A job being moved to an emptier host (rebalance): `job` was started on `toHostId`; once it is up,
 * the newest job of the type on `fromHostId` is stopped.
 */
export interface RebalanceMove {
  formationKey: string;
  type: string;
  fromHostId: string;
  toHostId: string;
  /** The replacement as placed (its id is followed if the host chose another). */
  job: ScheduledJob;
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
  /** Moves under way (rebalance). */
  moves?: readonly RebalanceMove[];
  /**
   * Hosts that may receive a moved job (ready for the settle time). Absent: no rebalancing. A
   * non-omni type whose jobs are all up is rebalanced, one move at a time, when the fullest host
   * runs 2 or more jobs of it more than the emptiest of these hosts that fits it.
   */
  rebalanceTo?: ReadonlySet<string>;
}

export interface PlannedStart {
  formation: Formation;
  type: string;
  hostId: string;
  restart?: PendingRestart;
  /** Set for a rebalance start: the host a job of the type moves away from once this one is up. */
  moveFrom?: string;
}

export interface PlannedStop {
  job: ScheduledJob;
  reason: StopReason;
  /** For reason `rebalance`: the move this stop completes. */
  move?: RebalanceMove;
}

export interface PlannedBlock {
  formation: Formation;
  type: string;
  count: number;
  reason: BlockedReason;
}

export interface Plan {
  starts: PlannedStart[];
  stops: PlannedStop[];
  blocked: PlannedBlock[];
  /** Restarts still waiting (neither started now nor dropped because the type was scaled down). */
  restarts: PendingRestart[];
  /** When the earliest waiting restart is due, if any. */
  wakeAt?: number;
  /** Moves still under way (their replacement is not up yet). */
  moves: RebalanceMove[];
}

/** Stop order for surplus jobs: not yet up first, then the newest. */
function surplusOrder(a: ScheduledJob, b: ScheduledJob): number {
  const rank = (j: ScheduledJob) => (j.state === 'up' ? 1 : 0);
  return rank(a) - rank(b) || b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1);
}

export function plan(input: PlanInput): Plan {
  const out: Plan = { starts: [], stops: [], blocked: [], restarts: [], moves: [] };
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
  const movesByGroup = new Map<string, RebalanceMove[]>();
  for (const m of input.moves ?? []) {
    const gkey = groupKey(m.formationKey, m.type, undefined);
    let list = movesByGroup.get(gkey);
    if (!list) movesByGroup.set(gkey, (list = []));
    list.push(m);
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

  /** Plan at most one move of a balanced-in-count, all-up, non-omni type from its fullest host to the emptiest settled host that fits it. */
  const rebalance = (formation: Formation, type: string, jobs: ScheduledJob[]) => {
    const to = input.rebalanceTo;
    if (!to || to.size === 0 || !input.placeable || jobs.length < 2 || jobs.some((j) => j.state !== 'up')) return;
    const perHost = new Map<string, number>();
    for (const h of input.hosts) perHost.set(h.id, 0);
    for (const j of jobs) perHost.set(j.hostId, (perHost.get(j.hostId) ?? 0) + 1);
    let from: string | undefined;
    for (const [id, n] of perHost) if (from === undefined || n > (perHost.get(from) as number) || (n === perHost.get(from) && id < from)) from = id;
    const key = formationKey(formation.app, formation.release);
    const need = { formationKey: key, type, tags: formation.tags?.[type] ?? {}, memoryBytes: formation.memory?.[type] ?? 0 };
    const max = perHost.get(from as string) as number;
    const candidates = input.hosts.filter((h) => to.has(h.id) && max - (perHost.get(h.id) ?? 0) >= 2 && load.fits(h, need) === true);
    const placed = load.place(need, candidates);
    if ('hostId' in placed) out.starts.push({ formation, type, hostId: placed.hostId, moveFrom: from as string });
  };

  const reconcileGroup = (formation: Formation, type: string, gkey: string, want: number, placeOn?: HostInfo) => {
    const key = formationKey(formation.app, formation.release);
    const memoryBytes = formation.memory?.[type] ?? 0;
    let jobs = groups.get(gkey) ?? [];
    const restarts = (restartsByGroup.get(gkey) ?? []).sort((a, b) => a.dueAt - b.dueAt);
    // Moves under way: the replacement counts extra until it is up; then a job leaves the source host.
    let moving = 0;
    let moved = false;
    for (const m of movesByGroup.get(gkey) ?? []) {
      const replacement = jobs.find((j) => j.id === m.job.id);
      if (!replacement) continue; // it failed to start, crashed or was stopped: the move is off
      if (replacement.state !== 'up') {
        out.moves.push(m);
        moving++;
        continue;
      }
      const leaving = jobs.filter((j) => j.hostId === m.fromHostId && j.id !== replacement.id).sort(surplusOrder)[0];
      if (!leaving) continue;
      out.stops.push({ job: leaving, reason: 'rebalance', move: m });
      load.add(leaving.hostId, key, type, leaving.memoryBytes, -1);
      jobs = jobs.filter((j) => j !== leaving);
      moved = true;
    }
    want += moving;
    if (jobs.length >= want) {
      for (const job of [...jobs].sort(surplusOrder).slice(0, jobs.length - want)) out.stops.push({ job, reason: 'scale' });
      if (jobs.length === want && moving === 0 && !moved && restarts.length === 0 && !placeOn) rebalance(formation, type, jobs);
      return;
    }
    const missing = want - jobs.length;
    const kept = restarts.slice(0, missing);
    const need = { formationKey: key, type, tags: formation.tags?.[type] ?? {}, memoryBytes };
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
