import { readdirSync, readFileSync } from 'node:fs';
/** Whether a process with `pid` exists (signal 0 checks without sending anything). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Whether `pid` runs (exists and is not a zombie waiting to be reaped). */
export function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Every process below `pid` (children, their children...), read from /proc. */
export function descendants(pid: number): { pid: number; command: string }[] {
  const all = readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .flatMap((name) => {
      try {
        const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
        const m = /^(\d+) \((.*)\) \S+ (\d+)/.exec(stat);
        return m ? [{ pid: Number(m[1]), command: m[2] as string, parent: Number(m[3]) }] : [];
      } catch {
        return [];
      }
    });
  const found: { pid: number; command: string }[] = [];
  const walk = (parent: number) => {
    for (const p of all) {
      if (p.parent !== parent) continue;
      found.push({ pid: p.pid, command: p.command });
      walk(p.pid);
    }
  };
  walk(pid);
  return found;
}
