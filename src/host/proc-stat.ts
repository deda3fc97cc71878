/** What Linux /proc says about processes: groups, start times, resident memory (process-runtime.ts). */
import { readdir, readFile, readlink } from 'node:fs/promises';
import { resolve } from 'node:path';

const PAGE_BYTES = 4096;

/** Fields of /proc/<pid>/stat after the `(comm)`: state is [0], ppid [1], pgrp [2], session [3], starttime [19], rss (pages) [21]. */
async function statFields(pid: string): Promise<string[] | undefined> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  return text.slice(text.lastIndexOf(')') + 2).split(' ');
}

export async function processGroupOf(pid: number): Promise<number | undefined> {
  const fields = await statFields(String(pid));
  return fields ? Number(fields[2]) : undefined;
}

/**
 * When the process started (clock ticks since boot), the identity that tells a process from a later
 * one that got its pid; undefined when there is no such process or it is a zombie (it has ended).
 */
export async function startTimeOf(pid: number): Promise<string | undefined> {
  const fields = await statFields(String(pid));
  return fields && fields[0] !== 'Z' ? fields[19] : undefined;
}

/** The process groups of the processes whose working directory is `dir`. */
export async function groupsWorkingIn(dir: string): Promise<number[]> {
  const pids = (await readdir('/proc').catch(() => [] as string[])).filter((n) => /^\d+$/.test(n));
  const groups = new Set<number>();
  await Promise.all(
    pids.map(async (pid) => {
      if ((await readlink(`/proc/${pid}/cwd`).catch(() => undefined)) !== resolve(dir)) return;
      const pgrp = await processGroupOf(Number(pid));
      if (pgrp !== undefined && pgrp > 1) groups.add(pgrp);
    }),
  );
  return [...groups];
}

/**
 * Resident set size in bytes of each of `groups`, summed over the group's processes, and those
 * processes. A job on a pty (pty-helper.ts) runs in a session of its own whose leader is a child of
 * the group's leader: its processes count for that group too.
 */
export async function rssByGroup(groups: Set<number>): Promise<Map<number, { bytes: number; pids: number[] }>> {
  const pids = (await readdir('/proc').catch(() => [] as string[])).filter((n) => /^\d+$/.test(n));
  const stats = await Promise.all(
    pids.map(async (pid) => {
      const fields = await statFields(pid);
      return fields && { pid: Number(pid), ppid: Number(fields[1]), pgrp: Number(fields[2]), session: Number(fields[3]), bytes: Number(fields[21]) * PAGE_BYTES };
    }),
  );
  const ppidOf = new Map(stats.flatMap((st) => (st ? [[st.pid, st.ppid] as const] : [])));
  const totals = new Map<number, { bytes: number; pids: number[] }>();
  for (const st of stats) {
    if (!st) continue;
    const group = groups.has(st.pgrp) ? st.pgrp : ppidOf.get(st.session);
    if (group === undefined || !groups.has(group)) continue;
    const total = totals.get(group) ?? { bytes: 0, pids: [] };
    total.bytes += st.bytes;
    total.pids.push(st.pid);
    totals.set(group, total);
  }
  return totals;
}
