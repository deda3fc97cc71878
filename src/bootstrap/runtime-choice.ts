/**
 * Where builds (and, in `startCluster`, jobs) run: Docker when the engine answers and an image is
 * there, else plain processes; and which image (the stack, else the slim runtime image).
 */
import Dockerode from 'dockerode';
import { inspectImage } from '../host/docker-image.js';
import { ensureRuntimeImage, RUNTIME_IMAGE_DEFAULTS } from '../host/runtime-image.js';
import { findStackImage, stackOf, STACK_IMAGE_DEFAULTS } from '../host/stack-image.js';
import { PROCESS_EXECUTOR_DEFAULTS } from '../slug/process-executor.js';
import { BootstrapInputError } from './errors.js';

/** Where builds (and jobs) run, as {@link chooseRuntime} picked it. */
export interface RuntimeChoice {
  runtime: 'docker' | 'process';
  /** With Docker: the image builds (and, in `startCluster`, jobs) run in. */
  image?: string;
  /** `$STACK` of builds and jobs: the image's `STACK`, `flynn-ts-slim` on the runtime image, `host` for process builds. */
  stack?: string;
}

/** Where builds (and, in `startCluster`, jobs) run. `auto`: Docker when the engine answers and the runtime image can be ensured, else processes. */
export type ClusterRuntime = 'auto' | 'docker' | 'process';

async function dockerAnswers(): Promise<boolean> {
  try {
    await new Dockerode().ping();
    return true;
  } catch {
    return false;
  }
}

/**
 * Pick the runtime and image: `auto` is Docker when the engine answers and an image is there (or
 * the runtime image can be built). The image is `image` when given (it must exist), else the stack
 * image when it is built, else the slim runtime image, with one line saying how to build the stack.
 */
export async function chooseRuntime(choice: ClusterRuntime, progress: (line: string) => void, image?: string): Promise<RuntimeChoice> {
  const processes: RuntimeChoice = { runtime: 'process', stack: PROCESS_EXECUTOR_DEFAULTS.stack };
  if (choice === 'process') return processes;
  if (choice === 'docker') return { runtime: 'docker', ...(await chooseImage(image, progress)) };
  if (!(await dockerAnswers())) {
    progress('Docker is not reachable: running jobs as processes');
    return processes;
  }
  try {
    return { runtime: 'docker', ...(await chooseImage(image, progress)) };
  } catch (err) {
    if (err instanceof BootstrapInputError) throw err; // a named image that is missing is the caller's to fix
    progress(`cannot ensure the runtime image (${(err as Error).message}): running jobs as processes`);
    return processes;
  }
}

async function chooseImage(image: string | undefined, progress: (line: string) => void): Promise<{ image: string; stack?: string }> {
  const docker = new Dockerode();
  if (image !== undefined) {
    const info = await inspectImage(docker, image);
    if (!info) throw new BootstrapInputError(`image ${image} is not in the Docker engine: build or load it first (\`npm run images\` builds ${STACK_IMAGE_DEFAULTS.latest})`, 'image');
    const stack = stackOf(info);
    progress(`builds run on ${image}${stack ? ` (STACK=${stack})` : ''}`);
    return { image, ...(stack ? { stack } : {}) };
  }
  const found = await findStackImage(docker);
  if (found) {
    progress(`builds run on the stack image ${found.name} (STACK=${found.stack})`);
    return { image: found.name, stack: found.stack };
  }
  await ensureRuntimeImage({ docker, onProgress: progress });
  progress(`the stack image ${STACK_IMAGE_DEFAULTS.latest} is not built: builds run on the slim runtime image (node + busybox: no bash, git, python3 or g++); build the stack with \`npm run images\``);
  return { image: RUNTIME_IMAGE_DEFAULTS.latest, stack: RUNTIME_IMAGE_DEFAULTS.stack };
}
