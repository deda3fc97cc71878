import type { HostInfo } from './host-client.js';
import { HOST_ID_TAG, type BlockedReason } from './types.js';

/** What a job to place needs. */
export interface PlacementNeed {
  formationKey: string;
  type: string;
  tags: Record<string, string>;
  memoryBytes: number;
}

interface Load {
  reservedBytes: number;
  total: number;
  byFormation: Map<string, number>;
  byType: Map<string, number>;
}

/** True when a host carries every tag the job asks for with the same value. */
export function tagsMatch(hostTags: Record<string, string>, wanted: Record<string, string>): boolean {
  return Object.entries(wanted).every(([k, v]) => hostTags[k] === v);
}

/**
 * The load of every host as the planner sees it while it plans: jobs counted per formation and per
 * type, and memory reserved. Placing a job adds it at once, so one plan spreads its own starts.
 */
export class ClusterLoad {
  private readonly loads = new Map<string, Load>();

  constructor(private readonly hosts: readonly HostInfo[]) {
    for (const h of hosts) this.loads.set(h.id, { reservedBytes: 0, total: 0, byFormation: new Map(), byType: new Map() });
  }

  add(hostId: string, formationKey: string, type: string, memoryBytes: number, delta = 1): void {
    const load = this.loads.get(hostId);
    if (!load) return;
    load.reservedBytes += memoryBytes * delta;
    load.total += delta;
    load.byFormation.set(formationKey, (load.byFormation.get(formationKey) ?? 0) + delta);
    const typeKey = `${formationKey}\u0000${type}`;
    load.byType.set(typeKey, (load.byType.get(typeKey) ?? 0) + delta);
  }

  reservedBytes(hostId: string): number {
    return this.loads.get(hostId)?.reservedBytes ?? 0;
  }

  /** Whether `host` can take the job: tags match and (when it declares a capacity; 0 means undeclared, no limit) memory is free. */
  fits(host: HostInfo, need: PlacementNeed): BlockedReason | true {
    if (!tagsMatch({ ...host.tags, [HOST_ID_TAG]: host.id }, need.tags)) return 'tags';
    if (need.memoryBytes > 0 && host.capacity.memoryBytes > 0 && this.reservedBytes(host.id) + need.memoryBytes > host.capacity.memoryBytes) return 'capacity';
    return true;
  }

  /**
   * Choose a host for one job: among the hosts it fits, the one with the fewest jobs of the same
   * type of the formation, then of the formation, then in all, then the lowest id (stable). Records
   * the job on the chosen host. Returns why nothing fits otherwise. `among` narrows the hosts considered.
   */
  place(need: PlacementNeed, among: readonly HostInfo[] = this.hosts): { hostId: string } | { blocked: BlockedReason } {
    if (among.length === 0) return { blocked: 'no-hosts' };
    let best: HostInfo | undefined;
    let bestScore: number[] = [];
    let reason: BlockedReason = 'tags';
    const typeKey = `${need.formationKey}\u0000${need.type}`;
    for (const host of among) {
      const fit = this.fits(host, need);
      if (fit !== true) {
        if (fit === 'capacity') reason = 'capacity';
        continue;
      }
      const load = this.loads.get(host.id) as Load;
      const score = [load.byType.get(typeKey) ?? 0, load.byFormation.get(need.formationKey) ?? 0, load.total];
      if (!best || lexLess(score, bestScore) || (lexEqual(score, bestScore) && host.id < best.id)) {
        best = host;
        bestScore = score;
      }
    }
    if (!best) return { blocked: reason };
    this.add(best.id, need.formationKey, need.type, need.memoryBytes);
    return { hostId: best.id };
  }
}

function lexLess(a: number[], b: number[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return (a[i] as number) < (b[i] as number);
  return false;
}

function lexEqual(a: number[], b: number[]): boolean {
  return a.every((v, i) => v === b[i]);
}
