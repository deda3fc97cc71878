import { DockerRuntime } from './docker-runtime.js';
import type { DockerRuntimeOptions } from './docker-runtime-options.js';
import { HostErrorCodes, HostInputError } from './errors.js';
import { ProcessRuntime, type ProcessRuntimeOptions } from './process-runtime.js';
import type { Runtime } from './runtime.js';

/** Which runtime runs the jobs, and its settings. */
export type RuntimeConfig = ({ backend: 'docker' } & DockerRuntimeOptions) | ({ backend: 'process' } & ProcessRuntimeOptions);

/** Build a {@link Runtime} from configuration: the one place a runtime is chosen. */
export function createRuntime(config: RuntimeConfig): Runtime {
  switch (config.backend) {
    case 'docker': {
      const { backend: _backend, ...options } = config;
      return new DockerRuntime(options);
    }
    case 'process': {
      const { backend: _backend, ...options } = config;
      return new ProcessRuntime(options);
    }
    default:
      throw new HostInputError(`unknown runtime backend ${JSON.stringify((config as { backend: unknown }).backend)}: use docker or process`, 'backend', HostErrorCodes.INVALID_CONFIG);
  }
}
