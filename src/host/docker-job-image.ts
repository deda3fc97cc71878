/** Which image a job's container is created from: the one it names, else this host's default (the stack image, or the runtime image built when missing). */
import type Dockerode from 'dockerode';
import type { Logger } from '../common/logger.js';
import { DOCKER_RUNTIME_DEFAULTS } from './docker-runtime-options.js';
import { ensureRuntimeImage, RUNTIME_IMAGE_DEFAULTS } from './runtime-image.js';
import { findStackImage } from './stack-image.js';

export class DockerJobImage {
  private imageReady: Promise<{ image: string; stack?: string }> | undefined;

  constructor(
    private readonly docker: Dockerode,
    /** The image of jobs that name none (or the default). */
    private readonly image: string,
    private readonly buildImage: boolean,
    private readonly logger: Logger,
  ) {}

  /** The image (and `$STACK`) to create a job's container from: the stack image, or the runtime image built first when configured. */
  async imageFor(requested: string | undefined): Promise<{ image: string; stack?: string }> {
    // Formations and one-off jobs name DOCKER_RUNTIME_DEFAULTS.image when nobody chose an image: it
    // stands for this host's default, i.e. the image this runtime was given (the stack image when built).
    if (requested !== undefined && requested !== this.image && requested !== DOCKER_RUNTIME_DEFAULTS.image) return { image: requested };
    if (!this.buildImage) return { image: this.image };
    this.imageReady ??= this.defaultImage().then(
      (chosen) => {
        this.logger.info('job image ready', chosen);
        return chosen;
      },
      (err: unknown) => {
        this.imageReady = undefined;
        throw err;
      },
    );
    return this.imageReady;
  }

  /** Versioned names, not `:latest`: a retag elsewhere cannot change what jobs run in. Chosen once per runtime. */
  private async defaultImage(): Promise<{ image: string; stack?: string }> {
    if (this.image === DOCKER_RUNTIME_DEFAULTS.image) {
      const stack = await findStackImage(this.docker);
      if (stack) return { image: stack.name }; // it sets STACK itself
      const built = await ensureRuntimeImage({ docker: this.docker });
      return { image: built.name, stack: RUNTIME_IMAGE_DEFAULTS.stack };
    }
    return { image: (await ensureRuntimeImage({ docker: this.docker, name: this.image })).name };
  }
}
