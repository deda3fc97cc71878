import { rename, writeFile } from 'node:fs/promises';
import { sleep } from '../../common/lifecycle.js';
import { askSocket, type RuntimeApi } from './runtime-api.js';

/** A reload HAProxy's master refused (the new configuration did not load) or that did not end in time. */
export class ReloadError extends Error {}

/** What the master's `show proc` says: its pid, its reload counts, and the workers (the newest has `reloads` 0). */
export interface Processes {
  master: number;
  reloads: number;
  failed: number;
  workers: { pid: number; reloads: number }[];
}

/** Parse the master CLI's `show proc` (HAProxy 2.6: `<pid> master <reloads> [failed: <n>] ...`, then one line per worker). */
export function parseShowProc(text: string): Processes {
  const master = /^(\d+)\s+master\s+(\d+)\s+\[failed:\s*(\d+)\]/m.exec(text);
  if (!master) throw new ReloadError(`haproxy master: unexpected show proc answer: ${text.trim().slice(0, 200)}`);
  const workers = [...text.matchAll(/^(\d+)\s+worker\s+(\d+)/gm)].map((m) => ({ pid: Number(m[1]), reloads: Number(m[2]) }));
  return { master: Number(master[1]), reloads: Number(master[2]), failed: Number(master[3]), workers };
}

/** HAProxy's master CLI (`-S <socket>`): answers once the command's write side is closed. */
export class MasterCli {
  constructor(private readonly socketPath: string) {}

  run(command: string): Promise<string> {
    return askSocket(this.socketPath, `${command}\n`, true);
  }

  /** `show proc`, waiting up to `ms` for the socket (the master re-executes itself on a reload and opens it again). */
  async processes(ms = 5000): Promise<Processes> {
    const end = Date.now() + ms;
    for (;;) {
      try {
        return parseShowProc(await this.run('show proc'));
      } catch (err) {
        if (err instanceof ReloadError || Date.now() > end) throw err;
        await sleep(10);
      }
    }
  }
}

/** Write a file whole or not at all (HAProxy may read it while it is written). */
export async function writeAtomic(path: string, text: string, mode = 0o600): Promise<void> {
  await writeFile(`${path}.tmp`, text, { mode });
  await rename(`${path}.tmp`, path);
}

/**
 * Reload HAProxy in master-worker mode (SIGUSR2 to the master) with the configuration already on
 * disk, and wait until the new worker serves the Runtime API. The listening sockets pass from the
 * old worker to the new one (`-x`, done by the master), so no connection is refused; the old
 * worker finishes what it has in flight and exits. Rejects with {@link ReloadError} when the new
 * configuration did not load (the old worker then goes on serving) or after `timeoutMs`.
 */
export async function reloadHaproxy(master: MasterCli, api: RuntimeApi, timeoutMs: number, why: () => string | undefined): Promise<number> {
  const before = await master.processes();
  const old = new Set(before.workers.map((w) => w.pid));
  process.kill(before.master, 'SIGUSR2');
  const end = Date.now() + timeoutMs;
  let worker: number | undefined;
  while (Date.now() < end) {
    await sleep(10);
    if (worker === undefined) {
      // The master re-executes itself to reload: its socket refuses connections for a moment.
      const now = await master.processes(0).catch(() => undefined);
      if (now === undefined) continue;
      if (now.failed > before.failed) throw new ReloadError(`haproxy did not load the new configuration: ${why() ?? 'see its log'}`);
      worker = now.workers.find((w) => w.reloads === 0 && !old.has(w.pid))?.pid;
      if (worker === undefined) continue;
    }
    // The stats socket is handed over too: commands go to the new worker once it answers them.
    const info = await api.run('show info').catch(() => '');
    if (Number(/^Pid: (\d+)/m.exec(info)?.[1]) === worker) return worker;
  }
  throw new ReloadError(`haproxy reload did not finish within ${timeoutMs} ms`);
}
