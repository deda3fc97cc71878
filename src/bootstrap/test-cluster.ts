/**
 * `createTestCluster`: an N-host cluster in one call for users' own test suites, on loopback
 * addresses and free ports, torn down cleanly (jobs, containers, data dir, discovery registrations).
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../common/logger.js';
import { BootstrapInputError } from './errors.js';
import { startCluster, type BuildNetwork, type Cluster, type ClusterOptions } from './cluster.js';

export const TEST_CLUSTER_DEFAULTS = Object.freeze({
  hosts: 1,
  discovery: 'memory' as const,
  runtime: 'process' as const,
  /** First host agent address; the next ones count up (127.0.0.2, 127.0.0.3, ...). */
  firstHostAddr: '127.0.0.2',
  etcdEndpoints: ['http://127.0.0.1:2379'],
  domain: 'flynn.test',
});

export interface TestClusterOptions {
  /** Host agents, on 127.0.0.2, 127.0.0.3, ... (at most 8). Default 1. */
  hosts?: number;
  /** `memory` (default) or `etcd` (a unique key prefix per cluster; its keys go with their leases on close). */
  discovery?: 'memory' | 'etcd';
  /** Default `process` (fast); `docker` needs the engine. */
  runtime?: 'docker' | 'process';
  /** etcd endpoints. Default `['http://127.0.0.1:2379']`. */
  etcdEndpoints?: string[];
  /** Default {@link TEST_CLUSTER_DEFAULTS}.domain. */
  domain?: string;
  /** Network of build containers (`startCluster`'s `buildNetwork`): `bridge` by default, `none` for builds that must not reach out. */
  buildNetwork?: BuildNetwork;
  /** Save Dockerfile apps' images into shelf (`startCluster`'s `shipImages`). Default false. */
  shipImages?: boolean;
  /** Image of builds and Docker jobs (`startCluster`'s `image`), e.g. a stack variant. Default: the stack image when built. */
  image?: string;
  logger?: Logger;
}

/** A test cluster: a {@link Cluster} whose containers carry `io.flynn-ts.test=1` and `io.flynn-ts.test-run=<runId>`. */
export interface TestCluster extends Cluster {
  readonly runId: string;
}

/** Start an N-host cluster on loopback with free ports. `await using` or `close()` tears it down. */
export async function createTestCluster(options: TestClusterOptions = {}): Promise<TestCluster> {
  const hosts = options.hosts ?? TEST_CLUSTER_DEFAULTS.hosts;
  if (!Number.isInteger(hosts) || hosts < 1 || hosts > 8) throw new BootstrapInputError(`hosts must be 1-8, got ${JSON.stringify(options.hosts)}`, 'hosts');
  const discovery = options.discovery ?? TEST_CLUSTER_DEFAULTS.discovery;
  if (discovery !== 'memory' && discovery !== 'etcd') throw new BootstrapInputError(`discovery must be memory or etcd, got ${JSON.stringify(discovery)}`, 'discovery');
  const runId = randomUUID().slice(0, 8);
  const [a, b, c] = TEST_CLUSTER_DEFAULTS.firstHostAddr.split('.');
  const first = Number(TEST_CLUSTER_DEFAULTS.firstHostAddr.split('.')[3]);
  const clusterOptions: ClusterOptions = {
    hostAddrs: Array.from({ length: hosts }, (_, i) => `${a}.${b}.${c}.${first + i}`),
    ports: { controller: 0, router: 0, git: 0, shelf: 0 },
    runtime: options.runtime ?? TEST_CLUSTER_DEFAULTS.runtime,
    discovery: discovery === 'etcd' ? { backend: 'etcd', endpoints: options.etcdEndpoints ?? [...TEST_CLUSTER_DEFAULTS.etcdEndpoints], prefix: `/flynn-ts-test/${runId}` } : { backend: 'memory' },
    labels: { 'io.flynn-ts.test': '1', 'io.flynn-ts.test-run': runId },
    domain: options.domain ?? TEST_CLUSTER_DEFAULTS.domain,
    stopGraceMs: 1000,
  };
  if (options.logger) clusterOptions.logger = options.logger;
  if (options.buildNetwork) clusterOptions.buildNetwork = options.buildNetwork;
  if (options.image) clusterOptions.image = options.image;
  if (options.shipImages !== undefined) clusterOptions.shipImages = options.shipImages;
  const cluster = await startCluster(clusterOptions);
  return Object.assign(cluster, { runId });
}
