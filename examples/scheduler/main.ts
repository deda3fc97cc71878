/**
 * Scheduler demo on fake host agents (no Docker needed): two scheduler instances, three hosts,
 * `web=6`, then a host dies and its jobs move. Prints every decision and a `flynn ps` view.
 *
 *   npx tsx examples/scheduler/main.ts [--host-ttl 2000] [--log-level info]   # --help for env twins
 *
 * Swap `cluster.connector` for the host-agent connector and `cluster.mortal()` for a real discovery
 * backend to run it on a real cluster.
 */
import { createConsoleLogger } from '../../src/common/logger.js';
import { until } from '../../src/common/until.js';
import { MemoryFormationSource, startScheduler, type Scheduler, type SchedulerView } from '../../src/scheduler/index.js';
import { FakeCluster } from '../../src/scheduler/testing/index.js';
import { parseCli } from '../shared/cli-args.js';

const cli = parseCli({
  name: 'scheduler',
  usage: 'node --import tsx examples/scheduler/main.ts [flags]',
  summary: 'Scheduler demo on fake host agents: two schedulers, three hosts, web=6, then a host dies and its jobs move.',
  flags: {
    'host-ttl': { type: 'string', value: 'MS', env: 'HOST_TTL_MS', default: '2000', help: 'how long a dead host stays registered' },
    'log-level': { type: 'string', value: 'debug|info|warn|error', env: 'LOG_LEVEL', default: 'info', help: 'log level' },
  },
});
const hostTtlMs = cli.integer('host-ttl', 1) as number;
const logger = createConsoleLogger({ level: cli.oneOf('log-level', ['debug', 'info', 'warn', 'error'] as const) });
const cluster = new FakeCluster({ latencyMs: 1 });
const hosts = await Promise.all(['host-a', 'host-b', 'host-c'].map((id, i) => cluster.addHost({ id, ttlMs: hostTtlMs, tags: { disk: i === 0 ? 'hdd' : 'ssd' } })));
const formations = new MemoryFormationSource();
const schedulers = await Promise.all(
  ['sched-1', 'sched-2'].map((id) => startScheduler({ id, discovery: cluster.mortal(), formations, connectHost: cluster.connector, logger })),
);

const ps = (view: SchedulerView) => {
  for (const f of view.formations) {
    for (const p of f.processes) {
      console.log(`${f.app}/${f.release} ${p.type}: ${p.jobs.length}/${p.desired}${p.omni ? ' per host' : ''}${p.blocked ? ` (${p.blocked} blocked)` : ''}`);
      for (const j of p.jobs) console.log(`  ${j.id.slice(0, 8)}  ${j.hostId.padEnd(7)} ${j.state}`);
    }
  }
};

for (const s of schedulers) {
  void (async () => {
    for await (const e of s.events()) {
      const what = 'job' in e ? `${e.job.type} ${e.job.id.slice(0, 8)} on ${e.job.hostId}` : 'hostId' in e ? e.hostId : '';
      console.log(`[${s.id}] ${e.type} ${what}`);
    }
  })();
}

const shutdown = async () => {
  await Promise.all(schedulers.map((s) => s.close()));
  await cluster.close();
};
process.once('SIGINT', () => void shutdown().then(() => process.exit(130)));

formations.put({
  app: 'shop',
  release: 'v1',
  processes: { web: 6, logship: 1 },
  omni: ['logship'],
  tags: { web: { disk: 'ssd' } },
  spec: { web: { image: 'flynn-ts/runtime:latest', cmd: ['start', 'web'] }, logship: { image: 'flynn-ts/runtime:latest', cmd: ['ship'] } },
});
// Whichever instance wins the election leads; wait for it to know `hosts` hosts (however slow the machine).
const leader = async (hosts: number): Promise<Scheduler> => {
  const abort = new AbortController();
  try {
    return await Promise.any(schedulers.map(async (s) => (await until((signal) => s.watchLeadership({ signal }), (l) => l.leading && l.readyHosts >= hosts, { signal: abort.signal, timeoutMs: 10_000, what: `${s.id} leading` }), s)));
  } finally {
    abort.abort();
  }
};
const first = await leader(hosts.length);
await first.settle();
ps(first.view());
console.log(`\nkilling host-b; its registration expires in ${hostTtlMs} ms`);
hosts[1]!.kill();
await new Promise((r) => setTimeout(r, hostTtlMs + 500));
const next = await leader(hosts.length - 1);
await next.settle();
ps(next.view());
await shutdown();
