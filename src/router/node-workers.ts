import cluster, { type Worker } from 'node:cluster';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Engine, EngineListen, RouterCore } from './engine.js';
import type { MetricsSnapshot } from './metrics.js';
import { RouterListenError } from './errors.js';
import type { HttpRoute } from './types.js';

/** Primary → worker messages (node-worker.ts). */
export interface StartMessage {
  type: 'start';
  /** The router's settings as JSON (the sticky key goes apart, in hex). */
  config: object;
  stickyKey: string;
  where: EngineListen;
  /** Count metrics (the primary asks for them when scraped). */
  metrics: boolean;
  /** Send access log lines to the primary (its `accessLog.write`) instead of writing them to stdout. */
  relayLog: boolean;
}
export interface StateMessage {
  type: 'state';
  version: number;
  routes: HttpRoute[];
  /** service → its live instances, or null while discovery has not answered yet. */
  pools: Record<string, { id: string; addr: string }[] | null>;
}
export type ToWorker = StartMessage | StateMessage | { type: 'stop'; drainMs: number } | { type: 'metrics'; id: number };
export type FromWorker =
  | { type: 'hello' }
  | { type: 'ready'; httpPort: number; httpsPort: number | undefined }
  | { type: 'failed'; message: string }
  | { type: 'ack'; version: number }
  | { type: 'metrics'; id: number; snapshot: MetricsSnapshot }
  | { type: 'log'; lines: string[] };

/** How long a scrape waits for a worker's counts before it leaves that worker out. */
const METRICS_WAIT_MS = 2_000;

/** The worker entry: next to this file (.ts under tsx in development), or in dist/router/ once built (this code may sit in a shared chunk). */
function workerEntry(): { file: string; execArgv: string[] } {
  const ts = fileURLToPath(new URL('./node-worker.ts', import.meta.url));
  if (existsSync(ts)) return { file: ts, execArgv: ['--import', 'tsx'] };
  const built = ['./node-worker.js', './router/node-worker.js'].map((p) => fileURLToPath(new URL(p, import.meta.url)));
  return { file: built.find((f) => existsSync(f)) ?? (built[0] as string), execArgv: [] };
}

/**
 * The node engine in `count` processes (node:cluster) sharing the listeners, each accepting on its
 * own (SCHED_NONE: the kernel spreads connections, the primary does not relay them). The primary
 * keeps the routes and discovery watches, and sends every worker the whole HTTP route table and
 * backend lists after each change; `settled()` waits until every worker has it.
 */
export async function startNodeWorkers(core: RouterCore, where: EngineListen, count: number): Promise<Engine> {
  const { config, table, backends, applier } = core;
  const entry = workerEntry();
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  cluster.setupPrimary({ exec: entry.file, execArgv: entry.execArgv });
  const workers: Worker[] = [];
  const acked = new Map<Worker, number>();
  let version = 0;
  let waiters: (() => void)[] = [];
  const exits: Promise<void>[] = [];

  const snapshot = (): StateMessage => {
    const pools: StateMessage['pools'] = {};
    for (const service of backends.services()) {
      const pool = backends.get(service);
      pools[service] = pool?.isReady ? pool.backends.map((b) => ({ id: b.id, addr: b.addr })) : null;
    }
    return { type: 'state', version: ++version, routes: table.routes(), pools };
  };
  let pending = false;
  const schedule = () => {
    if (pending) return;
    pending = true;
    setImmediate(() => {
      pending = false;
      const state = snapshot();
      for (const w of workers) if (w.isConnected()) w.send(state);
    });
  };
  const allAcked = () => workers.every((w) => !w.isConnected() || (acked.get(w) ?? 0) >= version);

  const { stickyKey, ...rest } = config;
  const writeLog = config.accessLog?.write;
  const start: StartMessage = { type: 'start', config: rest, stickyKey: stickyKey.toString('hex'), where, metrics: config.metrics !== undefined, relayLog: writeLog !== undefined };
  let asked = 0;
  const answers = new Map<number, (snapshot: MetricsSnapshot) => void>();
  const first = workers.length;
  for (let i = first; i < count; i++) {
    const worker = cluster.fork();
    workers.push(worker);
    exits.push(new Promise((resolve) => worker.once('exit', () => resolve())));
    worker.on('message', (msg: FromWorker) => {
      if (msg.type === 'log') for (const line of msg.lines) writeLog?.(line);
      if (msg.type === 'metrics') answers.get(msg.id)?.(msg.snapshot);
      if (msg.type !== 'ack') return;
      acked.set(worker, msg.version);
      if (allAcked()) for (const done of waiters.splice(0)) done();
    });
  }
  const ready = await Promise.all(
    workers.map(
      (w) =>
        new Promise<{ httpPort: number; httpsPort: number | undefined }>((resolve, reject) => {
          w.on('message', (msg: FromWorker) => {
            // The worker says hello once it listens for messages (one sent earlier would be lost).
            if (msg.type === 'hello') w.send(start);
            if (msg.type === 'ready') resolve(msg);
            if (msg.type === 'failed') reject(new RouterListenError(msg.message));
          });
          w.once('exit', (code) => reject(new RouterListenError(`router worker exited (${code}) before listening`)));
        }),
    ),
  ).catch((err: unknown) => {
    for (const w of workers) w.process.kill('SIGKILL');
    throw err;
  });
  table.listeners.add(schedule);
  backends.listeners.add(schedule);
  applier.dataPlaneSettled = async () => {
    // Let a change made just now reach the snapshot, then wait for every worker's ack of it.
    await new Promise((resolve) => setImmediate(resolve));
    if (pending) await new Promise((resolve) => setImmediate(resolve));
    if (!allAcked()) await new Promise<void>((resolve) => waiters.push(resolve));
  };
  schedule();
  await applier.dataPlaneSettled();
  const stopFollowing = () => {
    table.listeners.delete(schedule);
    backends.listeners.delete(schedule);
    waiters = [];
  };
  const [firstReady] = ready;
  return {
    httpPort: firstReady?.httpPort ?? where.http.port,
    httpsPort: firstReady?.httpsPort,
    // Each worker counts its own; the primary serves none.
    inFlight: () => 0,
    async workerMetrics() {
      const asking = workers.filter((w) => w.isConnected());
      const snapshots = await Promise.all(
        asking.map(
          (w) =>
            new Promise<MetricsSnapshot | undefined>((resolve) => {
              const id = ++asked;
              const timer = setTimeout(() => done(undefined), METRICS_WAIT_MS);
              const done = (snapshot: MetricsSnapshot | undefined) => {
                clearTimeout(timer);
                answers.delete(id);
                resolve(snapshot);
              };
              answers.set(id, done);
              w.send({ type: 'metrics', id } satisfies ToWorker);
            }),
        ),
      );
      return snapshots.filter((s) => s !== undefined);
    },
    async stopAccepting() {
      stopFollowing();
      for (const w of workers) if (w.isConnected()) w.send({ type: 'stop', drainMs: config.drainTimeoutMs } satisfies ToWorker);
    },
    whenIdle: () => Promise.all(exits).then(() => undefined),
    async close() {
      stopFollowing();
      for (const w of workers) if (!w.isDead()) w.process.kill('SIGKILL');
      await Promise.all(exits);
    },
  };
}
