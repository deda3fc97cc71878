/** The Docker runtime's options and their defaults. */
import type Dockerode from 'dockerode';
import type { Logger } from '../common/logger.js';

export const DOCKER_RUNTIME_DEFAULTS = Object.freeze({
  /**
   * Image for jobs that name none: the stack image (`flynn-ts/stack`, `npm run images`) when it is
   * built, else this slim runtime image, built locally by `ensureRuntimeImage` when missing.
   */
  image: 'flynn-ts/runtime:latest',
  /** Run docker-init as PID 1 so signals reach the job and zombies are reaped. */
  init: true,
  /** The host's CA bundle, mounted read-only over the image's in every job (apps calling out through a TLS-intercepting proxy). */
  caBundle: '/etc/ssl/certs/ca-certificates.crt',
  /** Jobs run as `app` (uid/gid 1000, home `/app`), which the runtime and stack images have, never as root. */
  user: '1000:1000',
  /**
   * The Docker network every job joins: a user-defined bridge (created when missing), so a job's
   * `alias` (e.g. `postgres.flynn`) resolves in the others, as Flynn's discoverd DNS names did.
   */
  network: 'flynn-ts',
});

export interface DockerRuntimeOptions {
  /** Docker client. Default `new Dockerode()` (the local socket or DOCKER_HOST). */
  docker?: Dockerode;
  /** Image for jobs without `image`. Default: the stack image when built, else {@link DOCKER_RUNTIME_DEFAULTS}.image. */
  image?: string;
  /**
   * Without `image`: use the stack image when built, else build the runtime image with
   * `ensureRuntimeImage` when it is missing. Default true when `image` is the default, false
   * otherwise (a custom image must exist in the engine).
   */
  buildImage?: boolean;
  /** Extra labels on every container (tests mark theirs). */
  labels?: Record<string, string>;
  /** Default {@link DOCKER_RUNTIME_DEFAULTS}.init. */
  init?: boolean;
  /**
   * Host CA bundle mounted read-only over the image's in every job, with `NODE_EXTRA_CA_CERTS` and
   * `SSL_CERT_FILE` pointing at it; skipped when the file is missing, none with `null`. Default
   * {@link DOCKER_RUNTIME_DEFAULTS}.caBundle.
   */
  caBundle?: string | null;
  /** `$STACK` of every job (the job's env wins). Default: unset, the image's own `STACK` env (the stack image sets one). */
  stack?: string;
  /** `uid:gid` (or a user name of the image) jobs run as. Default {@link DOCKER_RUNTIME_DEFAULTS}.user. */
  user?: string;
  /** Default {@link DOCKER_RUNTIME_DEFAULTS}.network; `bridge` keeps Docker's default network (no aliases). */
  network?: string;
  logger?: Logger;
}
