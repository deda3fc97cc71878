/** The host agent's options, their defaults, and the config it runs with once they are checked. */
import { tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { systemClock, type Clock } from '../common/clock.js';
import type { Logger } from '../common/logger.js';
import type { Discovery } from '../discovery/discovery.js';
import type { EndedJobsOptions } from './ended-jobs.js';
import { HostErrorCodes, HostInputError } from './errors.js';
import type { Runtime } from './runtime.js';
import type { HostCapacity } from './types.js';
import { validateAdvertiseAddr, validateHostId } from './validate.js';

export const HOST_AGENT_DEFAULTS = Object.freeze({
  /** Host ports handed to jobs, inclusive. Below the Linux ephemeral range. */
  portRange: [20000, 29999] as readonly [number, number],
  /** Time between SIGTERM and SIGKILL when a job is stopped, in ms. */
  stopGraceMs: 10_000,
  /**
   * How long an ended job (and its container/logs) is kept for inspection after it ended, in ms;
   * counted from its end across agent restarts too. After that the agent answers from its record.
   */
  retainEndedMs: 5 * 60_000,
  /**
   * TTL of the agent's and its jobs' discovery registrations, in ms: a dead host's jobs leave the
   * routers and are replaced within it. 2 s is etcd's shortest lease; heartbeats go every third of
   * it, so a stall of the agent or etcd longer than ~1.3 s reads as a host loss (docs/scheduler.md).
   */
  registrationTtlMs: 2_000,
  /** State change events kept for SSE resume (`Last-Event-Id`). */
  eventBacklog: 1000,
  /** Where job artifacts are downloaded (`<artifactsDir>/<hostId>/<jobId>/slug.tgz`). */
  artifactsDir: join(tmpdir(), 'flynn-ts-artifacts'),
  /** How long downloading one artifact may take, in ms. */
  artifactTimeoutMs: 60_000,
  /** Where host volumes are kept (`<volumesDir>/<hostId>/<name>/data`); the platform puts it in its data dir. */
  volumesDir: join(tmpdir(), 'flynn-ts-volumes'),
  /** Where the agent keeps its state (`<stateDir>/<hostId>/ended`: the ended jobs, ended-jobs.ts); the platform puts it in its data dir. */
  stateDir: join(tmpdir(), 'flynn-ts-host-state'),
});

export interface HostAgentConfig {
  /** Host id: 1-63 lowercase letters, digits and dashes. Unique in the cluster. */
  id: string;
  /** IPv4 address job ports are published on and advertised at, e.g. `127.0.0.2`. */
  advertiseAddr: string;
  discovery: Discovery;
  /** Runs the jobs. The caller owns it (closes it after the agent). */
  runtime: Runtime;
  /** Free-form tags the scheduler matches on, e.g. `{ disk: 'ssd' }`. */
  tags?: Record<string, string>;
  /** Default: all of the machine's memory. */
  capacity?: Partial<HostCapacity>;
  /** Default {@link HOST_AGENT_DEFAULTS}.portRange. */
  portRange?: readonly [number, number];
  /** Default {@link HOST_AGENT_DEFAULTS}.stopGraceMs. */
  stopGraceMs?: number;
  /** Default {@link HOST_AGENT_DEFAULTS}.retainEndedMs. */
  retainEndedMs?: number;
  /** Default {@link HOST_AGENT_DEFAULTS}.registrationTtlMs. */
  registrationTtlMs?: number;
  /** Default {@link HOST_AGENT_DEFAULTS}.artifactsDir. */
  artifactsDir?: string;
  /** Default {@link HOST_AGENT_DEFAULTS}.artifactTimeoutMs. */
  artifactTimeoutMs?: number;
  /** Default {@link HOST_AGENT_DEFAULTS}.volumesDir. */
  volumesDir?: string;
  /** Default {@link HOST_AGENT_DEFAULTS}.stateDir. */
  stateDir?: string;
  /** Bounds of the ended jobs kept (lines and bytes per job, jobs, age). Default `ENDED_JOBS_DEFAULTS`. */
  endedJobs?: Omit<EndedJobsOptions, 'dir'>;
  /** Time of `retainEndedMs` and of the pauses between attempts to register again. Default the system clock. */
  clock?: Clock;
  logger?: Logger;
}

/** The config the agent runs with: every default filled in, checked, frozen. */
export type AgentSettings = Required<Omit<HostAgentConfig, 'capacity' | 'logger' | 'volumesDir' | 'stateDir' | 'endedJobs'>> & { capacity: HostCapacity };

export function agentSettings(config: HostAgentConfig): AgentSettings {
  const id = validateHostId(config.id);
  const advertiseAddr = validateAdvertiseAddr(config.advertiseAddr);
  const [first, last] = config.portRange ?? HOST_AGENT_DEFAULTS.portRange;
  if (!Number.isInteger(first) || !Number.isInteger(last) || first < 1 || last > 65535 || first > last) {
    throw new HostInputError(`portRange must be [first, last] within 1-65535, got ${JSON.stringify(config.portRange)}`, 'portRange', HostErrorCodes.INVALID_CONFIG);
  }
  const memoryBytes = config.capacity?.memoryBytes ?? totalmem();
  if (!Number.isInteger(memoryBytes) || memoryBytes <= 0) throw new HostInputError('capacity.memoryBytes must be a positive integer', 'capacity.memoryBytes', HostErrorCodes.INVALID_CONFIG);
  return Object.freeze({
    id,
    advertiseAddr,
    discovery: config.discovery,
    runtime: config.runtime,
    tags: { ...config.tags },
    capacity: { memoryBytes },
    portRange: [first, last] as const,
    stopGraceMs: config.stopGraceMs ?? HOST_AGENT_DEFAULTS.stopGraceMs,
    retainEndedMs: config.retainEndedMs ?? HOST_AGENT_DEFAULTS.retainEndedMs,
    registrationTtlMs: config.registrationTtlMs ?? HOST_AGENT_DEFAULTS.registrationTtlMs,
    artifactsDir: config.artifactsDir ?? HOST_AGENT_DEFAULTS.artifactsDir,
    artifactTimeoutMs: config.artifactTimeoutMs ?? HOST_AGENT_DEFAULTS.artifactTimeoutMs,
    clock: config.clock ?? systemClock,
  });
}
