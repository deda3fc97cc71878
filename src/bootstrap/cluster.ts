/**
 * The whole cluster in one process: discovery, host agent(s), scheduler, shelf, controller, router
 * and git receiver, wired together so that `git push` deploys.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../common/logger.js';
import { silentLogger } from '../common/logger.js';
import type { Store } from '../controller/store.js';
import { createDiscovery, type DiscoveryConfig } from '../discovery/create.js';
import { startHostAgent, type HostAgentHandle } from '../host/agent.js';
import { createRuntime } from '../host/create.js';
import type { Runtime } from '../host/runtime.js';
import { TERMINAL_STATES } from '../host/types.js';
import { CloseStack } from './close-stack.js';
import { BootstrapInputError } from './errors.js';
import { checkPorts, chooseRuntime, launchPlatform, planPlatform, PLATFORM_DEFAULTS, type ClusterRuntime, type Platform } from './platform.js';

export type { ClusterRuntime } from './platform.js';

export const CLUSTER_DEFAULTS = Object.freeze({
  ...PLATFORM_DEFAULTS,
  /** Time a job gets between SIGTERM and SIGKILL, in ms. */
  stopGraceMs: 3_000,
});

export interface ClusterOptions {
  /** Where shelf blobs, git repositories, the SSH host key and job dirs live. Default: a temp dir removed on close. */
  dataDir?: string;
  /** Address every service listens on. Default {@link CLUSTER_DEFAULTS}.host. */
  host?: string;
  /** Ports (0 picks a free one). Defaults: controller 8081, router 8080, git 2222, shelf 8082. */
  ports?: { controller?: number; router?: number; routerHttps?: number; git?: number; shelf?: number };
  /**
   * Advertised addresses of the host agents started in this process, one agent each. Default
   * `[host]`. `[]` starts none: host agents elsewhere join through a shared (etcd) discovery.
   */
  hostAddrs?: string[];
  /** The controller's store (e.g. an `EtcdStore`); the caller owns and closes it. Default: a `MemoryStore` owned by the cluster. */
  store?: Store;
  /** Default `{ backend: 'memory' }`. */
  discovery?: DiscoveryConfig;
  /** `auto` (default): Docker when the engine answers and the runtime image can be ensured, else processes. */
  runtime?: ClusterRuntime;
  /** Extra labels on every container the cluster creates (tests label theirs). */
  labels?: Record<string, string>;
  /** Cluster key (controller auth). Default: generated. */
  key?: string;
  /** Default {@link CLUSTER_DEFAULTS}.domain. */
  domain?: string;
  /** Default {@link CLUSTER_DEFAULTS}.stopGraceMs. */
  stopGraceMs?: number;
  /** Default silent. */
  logger?: Logger;
  /** Progress lines while starting (e.g. building the runtime image). */
  onProgress?: (line: string) => void;
}

/** A started cluster: the platform (layer 1) plus its own host agents. */
export interface Cluster extends Platform {
  /** Where jobs and builds run. */
  readonly runtime: 'docker' | 'process';
  readonly hosts: readonly HostAgentHandle[];
  /** Stop everything, the apps' jobs included, in reverse order of start. Idempotent. */
  close(): Promise<void>;
}

/**
 * Start a one-process cluster. Everything listens on `host` (127.0.0.1 by default).
 * @throws {BootstrapPortInUseError} when a fixed port is taken (checked before anything starts, and
 *   again as each component listens); nothing started is left running.
 */
export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const host = options.host ?? CLUSTER_DEFAULTS.host;
  const hostAddrs = options.hostAddrs ?? [host];
  if (!Array.isArray(hostAddrs)) throw new BootstrapInputError('hostAddrs must be a list of addresses', 'hostAddrs');
  const logger = options.logger ?? silentLogger;
  const progress = options.onProgress ?? (() => {});
  const labels = { ...options.labels };
  const stopGraceMs = options.stopGraceMs ?? CLUSTER_DEFAULTS.stopGraceMs;
  // Checked before anything starts; the data dir is the cluster's (the platform shares it).
  const plan = planPlatform({
    host,
    readyHosts: hostAddrs.length,
    labels,
    logger,
    onProgress: progress,
    ...(options.ports !== undefined ? { ports: options.ports } : {}),
    ...(options.runtime !== undefined ? { build: options.runtime } : {}),
    ...(options.store !== undefined ? { store: options.store } : {}),
    ...(options.key !== undefined ? { key: options.key } : {}),
    ...(options.domain !== undefined ? { domain: options.domain } : {}),
  });

  // Everything started so far, closed in reverse order on failure or close().
  const closers = new CloseStack(logger);
  const ownsDataDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'flynn-ts-cluster-')));
  if (ownsDataDir) closers.push(() => rm(dataDir, { recursive: true, force: true }));

  try {
    await mkdir(dataDir, { recursive: true });
    const id = await clusterId(dataDir);
    // A busy port fails the start before the runtime image is built or any host agent starts.
    await checkPorts(plan.host, plan.ports);
    const runtimeName = await chooseRuntime(plan.build, progress);

    const discovery = createDiscovery(options.discovery ?? { backend: 'memory' }, { logger });
    closers.push(() => discovery.close());

    const runtime: Runtime = runtimeName === 'docker' ? createRuntime({ backend: 'docker', labels, logger }) : createRuntime({ backend: 'process', baseDir: join(dataDir, 'jobs'), logger });
    closers.push(() => runtime.close());
    // Without local hosts the runtime choice only decides where builds run.
    const hosts: HostAgentHandle[] = [];
    for (const [i, addr] of hostAddrs.entries()) {
      const agent = await startHostAgent({ id: `host${i + 1}-${id}`, advertiseAddr: addr, discovery, runtime, stopGraceMs, artifactsDir: join(dataDir, 'artifacts'), logger });
      hosts.push(agent);
      closers.push(async () => {
        // The cluster's jobs go with it (a Docker runtime would otherwise leave them running).
        const live = agent.agent.listJobs().filter((j) => !TERMINAL_STATES.has(j.state));
        await Promise.all(live.map((j) => agent.agent.stopJob(j.id, { graceMs: Math.min(stopGraceMs, 1000) }).catch(() => {})));
        const ids = agent.agent.listJobs().map((j) => j.id);
        await agent.close();
        await Promise.all(ids.map((id) => runtime.remove(agent.agent.id, id).catch(() => {})));
      });
    }

    const platform = await launchPlatform({ ...plan, discovery, dataDir }, runtimeName);
    closers.push(() => platform.close());

    const cluster: Cluster = {
      ...platform,
      hosts,
      close: () => closers.close(),
      [Symbol.asyncDispose]: () => cluster.close(),
    };
    return cluster;
  } catch (err) {
    await closers.close();
    throw err;
  }
}

/**
 * This cluster's id, kept in its data dir. Host ids carry it, and with them the containers' names
 * and labels, so two clusters on one Docker engine never take each other's containers for their
 * own (an agent adopts the containers labelled with its host id, and the scheduler then stops the
 * ones it has no formation for).
 */
async function clusterId(dataDir: string): Promise<string> {
  const file = join(dataDir, 'cluster-id');
  const kept = (await readFile(file, 'utf8').catch(() => '')).trim();
  if (/^[0-9a-f]{8}$/.test(kept)) return kept;
  const id = randomBytes(4).toString('hex');
  await writeFile(file, `${id}\n`);
  return id;
}
