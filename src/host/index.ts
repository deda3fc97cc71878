/**
 * The host agent (flynn-host): runs jobs as Docker containers or child processes behind one
 * {@link Runtime} interface, with an HTTP API, logs, limits and discovery registration.
 *
 * ```ts
 * import { startHostAgent, DockerRuntime, HostClient } from 'flynn-ts/host';
 * import { MemoryDiscovery } from 'flynn-ts/discovery';
 * const runtime = new DockerRuntime();
 * const key = componentKey(clusterKey, 'host'); // from 'flynn-ts/common'
 * const host = await startHostAgent({ id: 'host-1', advertiseAddr: '127.0.0.2', discovery: new MemoryDiscovery(), runtime, key });
 * const job = await new HostClient({ url: host.url, key }).createJob({ id: 'web-1', app: 'myapp', release: 'r1', type: 'web', cmd: ['node', 'server.js'], ports: [{ port: 8080, proto: 'tcp', service: 'myapp-web' }] });
 * ```
 * @module
 */
export type {
  BoundPort,
  ExitReason,
  ExitStatus,
  HostCapacity,
  HostStatus,
  Job,
  JobError,
  JobEvent,
  JobLimits,
  JobPort,
  JobSpec,
  JobState,
  JobVolume,
  LogLine,
  Volume,
} from './types.js';
export { JOB_TRANSITIONS, TERMINAL_STATES, canTransition } from './types.js';
export type { Runtime, RuntimeJob, RuntimeJobSpec, RuntimeEvent, RuntimeExitEvent, LogOptions, StopOptions, JobStdio, OutputChunk } from './runtime.js';
export { ALLOWED_SIGNALS } from './runtime.js';
export { DockerRuntime } from './docker-runtime.js';
export { DOCKER_RUNTIME_DEFAULTS } from './docker-runtime-options.js';
export { DOCKER_LABELS, containerName } from './docker-labels.js';
export type { DockerRuntimeOptions } from './docker-runtime-options.js';
export { ProcessRuntime, PROCESS_RUNTIME_DEFAULTS } from './process-runtime.js';
export { createRuntime } from './create.js';
export type { RuntimeConfig } from './create.js';
export type { ProcessRuntimeOptions } from './process-runtime.js';
export { HostAgent } from './agent.js';
export { HOST_AGENT_DEFAULTS } from './agent-config.js';
export type { HostAgentConfig } from './agent-config.js';
export { startHostAgent } from './start.js';
export type { HostAgentHandle, StartHostAgentOptions } from './start.js';
export { createHostServer } from './server.js';
export type { HostServer, HostServerOptions } from './server.js';
export { HostClient } from './client.js';
export { portServes, waitUntilServing, READINESS_DEFAULTS } from './readiness.js';
export type { WaitUntilServingOptions } from './readiness.js';
export { HOST_TRACE_CHANNEL } from './trace.js';
export type { JobRequest, HostClientOptions } from './client.js';
export { validateJobSpec } from './validate.js';
export {
  HostErrorCodes,
  HostInputError,
  JobNotFoundError,
  JobExistsError,
  JobNotRunningError,
  JobCrashedError,
  ArtifactFetchError,
  CapacityError,
  RuntimeError,
  DockerUnavailableError,
  RuntimeImageError,
  HostUnauthorizedError,
  VolumeNotFoundError,
  VolumeExistsError,
  VolumeInUseError,
} from './errors.js';
export { VolumeStore, VOLUME_DEFAULTS } from './volumes.js';
export type { VolumeStoreOptions } from './volumes.js';
export type { RuntimeImageErrorCode } from './errors.js';
export { ensureRuntimeImage, buildRuntimeImage, runtimeImageExists, RUNTIME_IMAGE_DEFAULTS } from './runtime-image.js';
export type { RuntimeImage, RuntimeImageOptions } from './runtime-image.js';
export { ensureStackImage, buildStackImage, findStackImage, STACK_IMAGE_DEFAULTS } from './stack-image.js';
export { parseOneLineSources, parseDeb822Sources, debianSources } from './apt-sources.js';
export type { StackImage, StackImageOptions } from './stack-image.js';
export type { AptSource } from './apt-sources.js';
