/**
 * What a new leader learns from the hosts' lists of ended jobs: the crash restarts the previous
 * leader still owed, with the delay they were waiting for. Pure: jobs in, restarts out.
 */
import { nextRestartAttempt, restartDelay, type BackoffOptions } from './backoff.js';
import type { PendingRestart } from './reconcile.js';
import { formationKey, type Formation, type ScheduledJob } from './types.js';

export interface RecoverInput {
  formations: ReadonlyMap<string, Formation>;
  /** Every job the hosts list in a live state. */
  live: readonly ScheduledJob[];
  /** Every job the hosts list as ended (`down`, `crashed`, `failed`), with `endedAt`. */
  ended: readonly ScheduledJob[];
  backoff: BackoffOptions;
}

/**
 * The restarts still owed for crashed jobs. A crash counts as restarted when a later job of the same
 * formation and type (same host for omni types) carries a restart count (`flynn.restarts` ≥ 1) and
 * was created after the crash: each such replacement answers for one crash, the earliest first.
 * A crash left over is owed a restart with the next attempt number, due at its end time plus that
 * attempt's backoff delay, exactly as the previous leader had planned it. The job's whole life
 * (created to ended) stands in for the time it was up when deciding whether the count starts afresh.
 * Surplus restarts (the type is full again) are dropped by the planner.
 */
export function recoverRestarts(input: RecoverInput): PendingRestart[] {
  const groupOf = (j: ScheduledJob): string | undefined => {
    const formation = input.formations.get(formationKey(j.app, j.release));
    if (j.oneOff || !formation || !((formation.processes[j.type] ?? 0) > 0)) return undefined;
    const omni = formation.omni?.includes(j.type) ?? false;
    return `${formationKey(j.app, j.release)}\u0000${j.type}${omni ? `\u0000${j.hostId}` : ''}`;
  };
  const crashes = new Map<string, ScheduledJob[]>();
  const replacements = new Map<string, ScheduledJob[]>();
  const add = (map: Map<string, ScheduledJob[]>, key: string, j: ScheduledJob) => {
    let list = map.get(key);
    if (!list) map.set(key, (list = []));
    list.push(j);
  };
  for (const j of [...input.live, ...input.ended]) {
    const key = groupOf(j);
    if (key === undefined) continue;
    if ((j.state === 'crashed' || j.state === 'failed') && j.endedAt !== undefined) add(crashes, key, j);
    if (j.restarts >= 1) add(replacements, key, j);
  }
  const out: PendingRestart[] = [];
  for (const [key, list] of crashes) {
    const candidates = (replacements.get(key) ?? []).sort((a, b) => a.createdAt - b.createdAt);
    const used = new Set<string>();
    for (const crash of list.sort((a, b) => (a.endedAt as number) - (b.endedAt as number))) {
      const endedAt = crash.endedAt as number;
      const answer = candidates.find((r) => !used.has(r.id) && r.id !== crash.id && r.createdAt >= endedAt);
      if (answer) {
        used.add(answer.id);
        continue;
      }
      const lived = crash.createdAt > 0 ? endedAt - crash.createdAt : undefined;
      const attempt = nextRestartAttempt(crash.restarts, lived, input.backoff);
      const restart: PendingRestart = {
        formationKey: formationKey(crash.app, crash.release),
        type: crash.type,
        attempt,
        dueAt: endedAt + restartDelay(attempt, input.backoff),
        previousJobId: crash.id,
      };
      const formation = input.formations.get(restart.formationKey);
      if (formation?.omni?.includes(crash.type)) restart.hostId = crash.hostId;
      out.push(restart);
    }
  }
  return out;
}
