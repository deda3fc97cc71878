/**
 * The host agent as the scheduler needs it: declared here by its user (STYLE.md), implemented by an
 * adapter over the host module's HTTP client, and by the fakes in `testing/`.
 */
import type { Instance } from '../discovery/types.js';
import { SchedulerErrorCodes, SchedulerInputError } from './errors.js';
import type { JobState, ProcessSpec } from './types.js';

/** The discovery service host agents register under. */
export const HOST_SERVICE = 'flynn-host';

/**
 * Labels the scheduler puts on every job it starts, so that any scheduler instance can rebuild its
 * picture of the cluster from the hosts' job lists alone.
 */
export const JOB_LABELS = Object.freeze({
  app: 'flynn.app',
  release: 'flynn.release',
  type: 'flynn.type',
  oneOff: 'flynn.oneoff',
  restarts: 'flynn.restarts',
  createdAt: 'flynn.created-at',
  memory: 'flynn.memory',
});

/** A job as a host reports it. Jobs without the scheduler's labels are not the scheduler's and are ignored. */
export interface HostJob {
  id: string;
  state: JobState;
  labels: Record<string, string>;
  memoryBytes?: number;
  /**
   * When the job ended (`down`, `crashed`, `failed`), ms since the epoch. Host agents keep ended jobs
   * in their list for a while; a new leader reads the recent crashes from them to keep the restart
   * backoff going.
   */
  endedAt?: number;
}

/**
 * What the scheduler asks a host to run. The id is chosen by the scheduler; a host that assigns its
 * own returns it from `startJob` and the scheduler follows it.
 */
export interface StartJobRequest extends ProcessSpec {
  id: string;
  labels: Record<string, string>;
  /** Memory limit in bytes; 0 or absent: no limit. */
  memoryBytes?: number;
}

/** A job changed state on a host. */
export interface JobEvent {
  job: HostJob;
}

/** Host capacity as registered in discovery (`meta.capacity`, JSON). */
export interface HostCapacity {
  memoryBytes: number;
}

/** What discovery says about a host: parsed from a `flynn-host` instance's meta. */
export interface HostInfo {
  id: string;
  /** The host agent's API `host:port`. */
  addr: string;
  tags: Record<string, string>;
  capacity: HostCapacity;
}

/** One host agent, connected. */
export interface SchedulerHost extends HostInfo {
  /** Every job the host knows of, in any state. */
  listJobs(options?: { signal?: AbortSignal }): Promise<HostJob[]>;
  /** Start a job; resolves once the host accepted it (usually `pending`). */
  startJob(request: StartJobRequest, options?: { signal?: AbortSignal }): Promise<HostJob>;
  /** Ask the host to stop a job; resolves once asked. Stopping an unknown or finished job is not an error. */
  stopJob(id: string, options?: { signal?: AbortSignal }): Promise<void>;
  /** Job state changes from now on; ends when `signal` aborts or the host goes away. */
  events(options?: { signal?: AbortSignal }): AsyncIterable<JobEvent>;
  /** Release the connection (not the host's jobs). */
  close(): Promise<void>;
}

/** Turns a `flynn-host` instance from discovery into a connected host. */
export type HostConnector = (info: HostInfo, instance: Instance) => SchedulerHost | Promise<SchedulerHost>;

/** Parse a `flynn-host` instance's meta `{ id, addr, tags, capacity }`; throws a {@link SchedulerInputError} when malformed. */
export function hostInfoFromInstance(instance: Instance): HostInfo {
  const bad = (why: string) =>
    new SchedulerInputError(SchedulerErrorCodes.INVALID_HOST, `invalid ${HOST_SERVICE} registration ${instance.id}: ${why}`, {
      detail: { instanceId: instance.id },
    });
  const meta = instance.meta;
  const id = meta.id;
  if (typeof id !== 'string' || id === '') throw bad('meta.id is missing');
  const addr = meta.addr ?? instance.addr;
  const tags = parseJson(meta.tags ?? '{}', () => bad('meta.tags is not a JSON object'));
  if (!isStringRecord(tags)) throw bad('meta.tags must map strings to strings');
  const capacity = parseJson(meta.capacity ?? '{}', () => bad('meta.capacity is not a JSON object'));
  if (typeof capacity !== 'object' || capacity === null || Array.isArray(capacity)) throw bad('meta.capacity must be an object');
  const memoryBytes = (capacity as { memoryBytes?: unknown }).memoryBytes ?? 0;
  if (typeof memoryBytes !== 'number' || !Number.isFinite(memoryBytes) || memoryBytes < 0) throw bad('meta.capacity.memoryBytes must be a number ≥ 0');
  return { id, addr, tags, capacity: { memoryBytes } };
}

/** The meta a host agent registers with, the inverse of {@link hostInfoFromInstance}. */
export function hostMeta(info: HostInfo): Record<string, string> {
  return { id: info.id, addr: info.addr, tags: JSON.stringify(info.tags), capacity: JSON.stringify(info.capacity) };
}

function parseJson(text: string, bad: () => Error): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw bad();
  }
}

function isStringRecord(value: unknown): value is Record<string, string> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.values(value).every((v) => typeof v === 'string');
}
