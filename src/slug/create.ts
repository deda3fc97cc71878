import { DockerBuildExecutor, type DockerBuildExecutorOptions } from './docker-executor.js';
import type { BuildExecutor } from './executor.js';
import { ProcessBuildExecutor, type ProcessBuildExecutorOptions } from './process-executor.js';
import { SlugInputError } from './errors.js';

/** Which executor runs builds, and its options. */
export type BuildExecutorConfig = ({ backend: 'docker' } & DockerBuildExecutorOptions) | ({ backend: 'process' } & ProcessBuildExecutorOptions);

/** The build executor a configuration names: `{ backend: 'docker' }` or `{ backend: 'process' }`. */
export function createBuildExecutor(config: BuildExecutorConfig): BuildExecutor {
  switch (config.backend) {
    case 'docker':
      return new DockerBuildExecutor(config);
    case 'process':
      return new ProcessBuildExecutor(config);
    default:
      throw new SlugInputError(`unknown build executor ${JSON.stringify((config as { backend?: unknown }).backend)}: use "docker" or "process"`, { field: 'backend' });
  }
}
