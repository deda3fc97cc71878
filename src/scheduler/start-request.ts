/** What the scheduler asks a host to start for a job it placed: the process spec with the job's env and labels. */
import { JOB_LABELS, type StartJobRequest } from './host-client.js';
import type { ProcessSpec, ScheduledJob } from './types.js';

/** The request that starts `job` (its id, app, release, type, restarts, memory, creation time) running `spec` with the formation's `env`. */
export function startRequest(job: ScheduledJob, spec: ProcessSpec, env: Record<string, string>): StartJobRequest {
  const { id, app, release, type, restarts, oneOff, memoryBytes, createdAt } = job;
  const labels: Record<string, string> = {
    [JOB_LABELS.app]: app,
    [JOB_LABELS.release]: release,
    [JOB_LABELS.type]: type,
    [JOB_LABELS.restarts]: String(restarts),
    [JOB_LABELS.createdAt]: String(createdAt),
  };
  if (oneOff) labels[JOB_LABELS.oneOff] = 'true';
  if (memoryBytes > 0) labels[JOB_LABELS.memory] = String(memoryBytes);
  const request: StartJobRequest = {
    id,
    image: spec.image,
    cmd: [...spec.cmd],
    env: { ...env, ...spec.env, FLYNN_APP: app, FLYNN_RELEASE: release, FLYNN_PROCESS_TYPE: type, FLYNN_JOB_ID: id },
    labels,
  };
  if (spec.ports) request.ports = spec.ports.map((p) => ({ ...p }));
  if (spec.artifact) request.artifact = { ...spec.artifact };
  if (spec.imageArchive) request.imageArchive = { ...spec.imageArchive };
  if (spec.stdio) request.stdio = spec.stdio;
  if (spec.volumes) request.volumes = spec.volumes.map((v) => ({ ...v }));
  if (spec.alias) request.alias = spec.alias;
  if (memoryBytes > 0) request.memoryBytes = memoryBytes;
  return request;
}
