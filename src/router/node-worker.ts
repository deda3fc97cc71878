/**
 * A worker process of the node engine with `workers: N` (started by node-workers.ts through
 * node:cluster): it serves the shared listeners from a mirror of the router's route table and
 * backends, which the primary sends it whole after each change.
 */
import { settlesWithin } from '../common/lifecycle.js';
import { silentLogger } from '../common/logger.js';
import { ServicePool } from './backends.js';
import type { AccessLogOptions } from './access-log.js';
import type { Engine } from './engine.js';
import { RouterMetrics } from './metrics.js';
import { startNodeEngine } from './node-engine.js';
import type { RouterConfig } from './options.js';
import { OutlierDetector } from './outlier.js';
import { HttpRouteTable } from './route-table.js';
import { SniCertificates } from './sni.js';
import type { FromWorker, StartMessage, StateMessage, ToWorker } from './node-workers.js';

const table = new HttpRouteTable();
const pools = new Map<string, ServicePool>();
const certificates = new SniCertificates();
let engine: Engine | undefined;
let config: RouterConfig | undefined;
let metrics: RouterMetrics | undefined;
/** Access log lines not yet sent to the primary (relayed in one message per turn of the event loop). */
let logLines: string[] = [];

function send(message: FromWorker, sent?: () => void): void {
  if (process.send) process.send(message, undefined, {}, sent && (() => sent()));
  else sent?.();
}

function relayLine(line: string): void {
  if (logLines.push(line) > 1) return;
  setImmediate(flushLog);
}

function flushLog(done?: () => void): void {
  const lines = logLines;
  logLines = [];
  if (lines.length > 0) send({ type: 'log', lines }, done);
  else done?.();
}

async function start(msg: StartMessage): Promise<void> {
  const base = msg.config as RouterConfig;
  const accessLog: AccessLogOptions | undefined = base.accessLog && msg.relayLog ? { ...base.accessLog, write: relayLine } : base.accessLog;
  config = { ...base, accessLog, stickyKey: Buffer.from(msg.stickyKey, 'hex') };
  const logger = silentLogger;
  metrics = msg.metrics ? new RouterMetrics() : undefined;
  const health = new OutlierDetector({ logger, ...config, counters: metrics });
  try {
    engine = await startNodeEngine({ config, logger, table, health, metrics, backends: { get: (s) => pools.get(s) }, certificate: (name) => certificates.lookup(name) }, msg.where);
    send({ type: 'ready', httpPort: engine.httpPort, httpsPort: engine.httpsPort });
  } catch (err) {
    send({ type: 'failed', message: (err as Error).message });
    process.exit(1);
  }
}

function apply(msg: StateMessage): void {
  const keep = new Set(msg.routes.map((r) => r.id));
  for (const route of table.routes()) if (!keep.has(route.id)) table.remove(route.id);
  for (const route of msg.routes) if (JSON.stringify(table.get(route.id)) !== JSON.stringify(route)) table.set(route);
  certificates.rebuild(table.routes(), silentLogger);
  for (const [service, pool] of pools) {
    if (msg.pools[service] === undefined) {
      pool.clear();
      pools.delete(service);
    }
  }
  for (const [service, instances] of Object.entries(msg.pools)) {
    let pool = pools.get(service);
    if (!pool) pools.set(service, (pool = new ServicePool(service)));
    if (instances !== null) pool.reset(instances);
  }
  send({ type: 'ack', version: msg.version });
}

async function stop(drainMs: number): Promise<void> {
  if (engine) {
    await engine.stopAccepting();
    await settlesWithin(engine.whenIdle(), drainMs);
    await engine.close();
  }
  for (const pool of pools.values()) pool.clear();
  // The last access log lines reach the primary before this process ends.
  flushLog(() => process.exit(0));
}

process.on('message', (msg: ToWorker) => {
  if (msg.type === 'start') void start(msg);
  else if (msg.type === 'state') apply(msg);
  else if (msg.type === 'stop') void stop(msg.drainMs);
  else if (msg.type === 'metrics') send({ type: 'metrics', id: msg.id, snapshot: (metrics ?? new RouterMetrics()).snapshot() });
});
send({ type: 'hello' });
// The primary went away: nothing routes to this worker's mirror any more.
process.on('disconnect', () => void stop(0));
