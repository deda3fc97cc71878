/**
 * A scheduler instance as its own process, for the real-cluster suite and benchmark: it can be
 * SIGKILLed like a real one (its etcd lease then runs out instead of being revoked).
 *
 *   node --import tsx test/scheduler/support-cluster-scheduler.ts   (config in env FLYNN_TEST_SCHEDULER, JSON)
 *
 * stdin, one JSON command per line: `{ op: 'put', formation }`, `{ op: 'scale', app, release,
 * processes }`, `{ op: 'run', request }`, `{ op: 'view' }`, `{ op: 'settle' }`. stdout, one JSON
 * line each: every scheduler event (`{ at, event }`), `{ view }` answers, `{ settled }` once a full
 * reconcile pass is over (or `{ settled: false, error }`), `{ error }` for a failed command.
 */
import { createInterface } from 'node:readline';
import { until } from '../../src/common/until.js';
import { createDiscovery } from '../../src/discovery/create.js';
import { HostClient } from '../../src/host/client.js';
import { hostAgentConnector } from '../../src/scheduler/host-agent-connector.js';
import { MemoryFormationSource } from '../../src/scheduler/memory-formation-source.js';
import { startScheduler, type SchedulerOptions } from '../../src/scheduler/scheduler.js';

interface Config {
  id: string;
  endpoints: string[];
  prefix: string;
  /** The host agents' key. */
  hostKey: string;
  timing: SchedulerOptions['timing'];
}

const config = JSON.parse(process.env.FLYNN_TEST_SCHEDULER ?? '{}') as Config;
const out = (value: unknown) => process.stdout.write(JSON.stringify(value) + '\n');
const discovery = createDiscovery({ backend: 'etcd', endpoints: config.endpoints, prefix: config.prefix });
const formations = new MemoryFormationSource();
const scheduler = await startScheduler({
  id: config.id,
  discovery,
  formations,
  connectHost: hostAgentConnector((url) => new HostClient({ url, key: config.hostKey })),
  ...(config.timing ? { timing: config.timing } : {}),
});
void (async () => {
  for await (const event of scheduler.events()) out({ at: Date.now(), event });
})();

/** A full reconcile pass, once leading: the `leader` event comes before the term has started. */
async function settle(): Promise<{ settled: boolean; error?: string }> {
  try {
    await until(scheduler.watchLeadership(), (l) => l.leading, { timeoutMs: 10_000, what: `${config.id} leading` });
    await scheduler.settle();
    return { settled: true };
  } catch (err) {
    return { settled: false, error: (err as Error).message };
  }
}

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  try {
    const cmd = JSON.parse(line) as { op: string; [k: string]: unknown };
    if (cmd.op === 'put') formations.put(cmd.formation as never);
    else if (cmd.op === 'scale') formations.scale(cmd.app as string, cmd.release as string, cmd.processes as Record<string, number>);
    else if (cmd.op === 'run') out({ ran: await scheduler.runJob(cmd.request as never) });
    else if (cmd.op === 'view') out({ view: scheduler.view() });
    else if (cmd.op === 'settle') out(await settle());
    else throw new Error(`unknown op ${cmd.op}`);
  } catch (err) {
    out({ error: (err as Error).message });
  }
}
// stdin closed: the test is done with us
await scheduler.close();
await discovery.close();
process.exit(0);
