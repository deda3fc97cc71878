/**
 * The connector for real host agents: adapts the host module's HTTP client to {@link SchedulerHost}.
 * The scheduler does not import the host module (client and scheduler evolve apart); it declares
 * the slice of the client it uses ({@link HostAgentApi}), which `HostClient` satisfies structurally:
 *
 * ```ts
 * import { HostClient } from 'flynn-ts/host';
 * const connectHost = hostAgentConnector((url) => new HostClient({ url, key: hostKey }), { artifactUrl: shelfUrlSigner({ url: shelfUrl, key: shelfKey }) });
 * ```
 */
import type { HostConnector, HostJob, SchedulerHost, StartJobRequest } from './host-client.js';
import { JOB_LABELS } from './host-client.js';
import type { JobState } from './types.js';

/** A job as the host agent reports it (the fields the scheduler reads). */
export interface AgentJob {
  id: string;
  state: JobState;
  meta: Record<string, string>;
  limits?: { memoryBytes?: number };
  /** ISO time of the last state change: for an ended job, when it ended. */
  updatedAt?: string;
}

/** A job as the host agent takes it. */
export interface AgentJobRequest {
  id: string;
  app: string;
  release: string;
  type: string;
  oneOff?: boolean;
  image?: string;
  cmd: string[];
  env: Record<string, string>;
  ports: { port: number; proto: 'tcp' | 'udp'; service?: string }[];
  limits: { memoryBytes?: number };
  meta: Record<string, string>;
  artifact?: { url: string; sha256?: string };
  imageArchive?: { url: string };
  stdin?: boolean;
  tty?: boolean;
  volumes?: { name: string; target: string; readOnly?: boolean }[];
  alias?: string;
}

/** The slice of the host agent's client the scheduler uses. */
export interface HostAgentApi {
  listJobs(options?: { signal?: AbortSignal }): Promise<AgentJob[]>;
  createJob(spec: AgentJobRequest, options?: { signal?: AbortSignal }): Promise<AgentJob>;
  stopJob(id: string, options?: { signal?: AbortSignal }): Promise<unknown>;
  events(options?: { signal?: AbortSignal }): AsyncIterable<{ job: AgentJob }>;
  close(): Promise<void>;
}

function toHostJob(job: AgentJob): HostJob {
  const out: HostJob = { id: job.id, state: job.state, labels: { ...job.meta } };
  if (job.limits?.memoryBytes !== undefined) out.memoryBytes = job.limits.memoryBytes;
  if ((job.state === 'down' || job.state === 'crashed' || job.state === 'failed') && job.updatedAt) {
    const endedAt = Date.parse(job.updatedAt);
    if (Number.isFinite(endedAt)) out.endedAt = endedAt;
  }
  return out;
}

function toAgentRequest(request: StartJobRequest, artifactUrl: (url: string) => string): AgentJobRequest {
  const l = request.labels;
  const spec: AgentJobRequest = {
    id: request.id,
    app: l[JOB_LABELS.app] ?? '',
    release: l[JOB_LABELS.release] ?? '',
    type: l[JOB_LABELS.type] ?? '',
    image: request.image,
    cmd: [...request.cmd],
    env: { ...request.env },
    ports: (request.ports ?? []).map((p) => (p.service === undefined ? { port: p.port, proto: p.proto ?? 'tcp' } : { port: p.port, proto: p.proto ?? 'tcp', service: p.service })),
    limits: request.memoryBytes ? { memoryBytes: request.memoryBytes } : {},
    meta: { ...l },
  };
  if (l[JOB_LABELS.oneOff] === 'true') spec.oneOff = true;
  if (request.artifact) spec.artifact = { ...request.artifact, url: artifactUrl(request.artifact.url) };
  if (request.imageArchive) spec.imageArchive = { url: artifactUrl(request.imageArchive.url) };
  if (request.stdio) spec.stdin = true;
  if (request.stdio === 'tty') spec.tty = true;
  if (request.volumes) spec.volumes = request.volumes.map((v) => ({ ...v }));
  if (request.alias) spec.alias = request.alias;
  return spec;
}

export interface HostAgentConnectorOptions {
  /**
   * The URL a host downloads a job's artifact from, made from the recorded one each time a job
   * starts: the platform signs shelf URLs here (`shelfUrlSigner`), so that a signature is fresh
   * whenever the job (re)starts, however old the release. Default: the recorded URL as it is.
   */
  artifactUrl?: (url: string) => string;
}

/**
 * A {@link HostConnector} over host agent clients: `client(url)` builds one for `http://<addr>`
 * (with the host key: `new HostClient({ url, key })`). Stopping a job the agent no longer knows
 * (HTTP 404) counts as done.
 */
export function hostAgentConnector(client: (url: string) => HostAgentApi, options: HostAgentConnectorOptions = {}): HostConnector {
  const artifactUrl = options.artifactUrl ?? ((url: string) => url);
  return (info) => {
    const api = client(`http://${info.addr}`);
    const host: SchedulerHost = {
      id: info.id,
      addr: info.addr,
      tags: { ...info.tags },
      capacity: { ...info.capacity },
      async listJobs(options) {
        return (await api.listJobs(options)).map(toHostJob);
      },
      async startJob(request, options) {
        return toHostJob(await api.createJob(toAgentRequest(request, artifactUrl), options));
      },
      async stopJob(id, options) {
        try {
          await api.stopJob(id, options);
        } catch (err) {
          if ((err as { kind?: string }).kind !== 'not_found') throw err;
        }
      },
      events(options) {
        const source = api.events(options);
        return {
          async *[Symbol.asyncIterator]() {
            for await (const event of source) yield { job: toHostJob(event.job) };
          },
        };
      },
      close: () => api.close(),
    };
    return host;
  };
}
