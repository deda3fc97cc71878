/**
 * The git receiver's {@link GitPlatform} over the controller's API only ({@link ControllerClient}):
 * keys and apps read through it, and a push deployed as flynn-receiver does it (build the slug →
 * artifact → release → deploy → wait). So the git receiver can run in another process than the
 * controller.
 */
import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import Dockerode from 'dockerode';
import type { ControllerClient } from '../controller/client.js';
import { bootTimeoutMs } from '../controller/deployer.js';
import { webService } from '../controller/default-route.js';
import { PushRejectedError } from '../git/errors.js';
import type { App, ArtifactType, Deployment, Release } from '../controller/types.js';
import type { GitPlatform } from '../git/receiver.js';
import type { DeploySource, OfferedKey, PushPreparation } from '../git/types.js';
import { prepareSlugBuild, SlugBuildPreparation } from '../slug/build-preparation.js';
import { buildSlug, type BuildSlugOptions } from '../slug/builder.js';
import { buildDockerfile, dockerBuildArgs, probeSource } from '../slug/dockerfile.js';
import { BuildFailedError } from '../slug/errors.js';
import type { BuildExecutor } from '../slug/executor.js';
import type { SlugShelf } from '../slug/types.js';
import { traceDeploy } from './trace.js';

export const CONTROLLER_GIT_PLATFORM_DEFAULTS = Object.freeze({
  /**
   * Least time the pusher waits for the deployment, in ms. The wait is longer when the app's boot
   * timeout (`deploy_timeout` meta) times the deployment's steps asks for more, so the deployer's
   * own failure message always reaches the pusher.
   */
  deployTimeoutMs: 120_000,
  /** Added to the boot timeouts of a deployment's steps for the pusher's wait, in ms. */
  deployMarginMs: 30_000,
  /** While the new jobs are not up, a line tells the pusher so this often, in ms. */
  waitingLineMs: 10_000,
});

/** A line that says why a push fails, as builds and the receiver print it (` !     ...`; warnings aside). */
const FAILURE_LINE_RE = /^ ! {5}(?!Warning:)(.*)$/;

export interface ControllerGitPlatformOptions {
  /** The controller's API: keys (authorize), apps, artifacts, releases, routes and deployments. */
  client: ControllerClient;
  shelf: SlugShelf;
  executor: BuildExecutor;
  /** Cluster domain: the default route of app `a` is `a.<domain>`. */
  domain: string;
  /** The URL printed to the pusher: `http://<app>.<domain>:<routerPort>`. Omit the port for 80. */
  routerPort?: number;
  /** Extra build options (buildpacks, memory, timeouts). */
  build?: Pick<BuildSlugOptions, 'buildpacksDir' | 'buildpacks' | 'npmDir' | 'offline' | 'cache' | 'cacheRoot' | 'memoryBytes' | 'timeoutMs'>;
  /** How long the pusher waits for the deployment, in ms. Default: {@link CONTROLLER_GIT_PLATFORM_DEFAULTS}.deployTimeoutMs, or more for a long boot timeout. */
  deployTimeoutMs?: number;
  /**
   * Dockerfile deploys: the Docker engine that builds a pushed `Dockerfile` (the one the hosts run
   * jobs on), labels for its images and the network of its RUN steps (the slug builds' network). Default: with the Docker build executor, `new Dockerode()`;
   * with the process executor none, and a Dockerfile app is refused. `shipImages`: also save each
   * image into shelf, for hosts whose engine is not the building one (default false: docs/buildpacks.md).
   */
  dockerfile?: { docker?: Dockerode; labels?: Record<string, string>; network?: string; shipImages?: boolean };
}

/** What a push built: a slug in shelf or an image in the Docker engine, and its process types. */
interface Built {
  type: ArtifactType;
  url: string;
  archiveUrl?: string;
  /** A slug's sha256, which hosts check it against. */
  sha256?: string;
  processes: Record<string, { cmd: string[]; ports?: number[] }>;
}

function isNotFound(err: unknown): boolean {
  return (err as { kind?: string }).kind === 'not_found';
}

/** The URL an app answers at through the router. */
export function appUrl(app: string, domain: string, routerPort?: number): string {
  return `http://${app}.${domain}${routerPort === undefined || routerPort === 80 ? '' : `:${routerPort}`}`;
}

/** A push's build, started when the push began (see {@link ControllerGitPlatform.preparePush}). */
class PreparedPushBuild implements PushPreparation {
  constructor(readonly build: SlugBuildPreparation) {}
  dispose(): Promise<void> {
    return this.build.discard();
  }
}

export class ControllerGitPlatform implements GitPlatform {
  constructor(private readonly options: ControllerGitPlatformOptions) {}

  /**
   * Start the push's build environment (with the Docker executor: its build container) while git
   * is still receiving the pack, so the container start does not add to the deploy.
   */
  preparePush(app: string): PushPreparation | undefined {
    const { build } = this.options;
    return new PreparedPushBuild(
      prepareSlugBuild({
        app,
        executor: this.options.executor,
        ...(build?.buildpacksDir === undefined ? {} : { buildpacksDir: build.buildpacksDir }),
        ...(build?.npmDir === undefined ? {} : { npmDir: build.npmDir }),
        ...(build?.memoryBytes === undefined ? {} : { memoryBytes: build.memoryBytes }),
        ...(build?.cacheRoot === undefined ? {} : { cacheRoot: build.cacheRoot }),
      }),
    );
  }

  async authorize(key: OfferedKey): Promise<boolean> {
    return (await this.options.client.listKeys()).some((k) => k.fingerprint === key.fingerprint);
  }

  async appExists(app: string): Promise<boolean> {
    try {
      return (await this.options.client.getApp(app)).name === app;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  /** Build and deploy a push's tree (or any tree: Taffy's fetch of a git URL, src/taffy). */
  async deploy(push: DeploySource): Promise<void> {
    const { client, domain } = this.options;
    const app = await client.getApp(push.app);
    // A bad deploy_timeout fails the push before its build, not after.
    const bootMs = bootTimeoutMs(app);
    const current = app.releaseId ? await client.getRelease(app.name, app.releaseId) : null;
    let lastLine = '';
    const onOutput = (line: string) => {
      lastLine = line;
      push.output(line);
    };
    traceDeploy('build start', app.name);
    let built: Built;
    try {
      built = await this.build(push, app, current, onOutput);
    } catch (err) {
      // The build's last line already says why (` !     npm install exited ...`): reject the push with
      // that very line, which the receiver does not print twice, rather than a second "build failed".
      const said = FAILURE_LINE_RE.exec(lastLine)?.[1];
      if (err instanceof BuildFailedError && said !== undefined) throw new PushRejectedError(said, { cause: err });
      throw err;
    }
    traceDeploy('build done', app.name);
    const { processes } = built;
    const artifact = await client.createArtifact(built);
    const release = await client.createRelease(app.name, { artifactId: artifact.id, env: current ? { ...current.env } : {} });
    push.output(`-----> Releasing v${release.version}...`);
    traceDeploy('release created', app.name);
    const deployment = await client.deploy(app.name, release.id);
    traceDeploy('deployment started', app.name);
    push.output(`-----> Deploying v${release.version} (${Object.entries(deployment.processes).map(([t, n]) => `${t}=${n}`).join(' ') || 'no processes'})...`);
    await this.addDefaultRoute(push, app, deployment);
    // One-by-one moves one job per step, each with its own boot timeout.
    const steps = app.strategy === 'one-by-one' && current ? Math.max(1, Object.values(deployment.processes).reduce((a, n) => a + n, 0)) : 1;
    const timeoutMs = this.options.deployTimeoutMs ?? Math.max(CONTROLLER_GIT_PLATFORM_DEFAULTS.deployTimeoutMs, steps * bootMs + CONTROLLER_GIT_PLATFORM_DEFAULTS.deployMarginMs);
    // A boot that takes long should not look like a hung push.
    const waitStart = Date.now();
    const waiting = setInterval(() => {
      push.output(`       waiting for the new jobs to come up (${Math.round((Date.now() - waitStart) / 1000)} s; boot timeout ${Math.round(bootMs / 1000)} s${steps > 1 ? ' per job' : ''})`);
    }, CONTROLLER_GIT_PLATFORM_DEFAULTS.waitingLineMs);
    try {
      // A failed deployment throws: the push is rejected and the previous release keeps serving.
      await client.waitForDeployment(app.name, deployment.id, { timeoutMs, signal: push.signal });
    } finally {
      clearInterval(waiting);
    }
    traceDeploy('deployment complete', app.name);
    const url = appUrl(app.name, domain, this.options.routerPort);
    if (processes.web) push.output(`=====> ${app.name} deployed to ${url}`);
    else for (const line of noWebLines(app.name, release.version, url, deployment.processes, Object.keys(processes))) push.output(line);
  }

  /**
   * The deployment says when it starts the app's first web process (`web=1`, controller/scale.ts):
   * the app gets its default route `<app>.<domain>` then, unless it has one already. Added while the
   * deployment runs: the push ends after it, so the route is there when the pusher reads the URL.
   */
  private async addDefaultRoute(push: DeploySource, app: App, deployment: Deployment): Promise<void> {
    if (!deployment.firstWeb) return;
    const domainName = `${app.name}.${this.options.domain}`;
    try {
      const routes = await this.options.client.listRoutes(app.name);
      if (routes.some((r) => r.type === 'http' && r.domain === domainName)) return;
      await this.options.client.createRoute(app.name, { type: 'http', domain: domainName, service: webService(app.name) });
    } catch (err) {
      push.output(` !     cannot add the default route ${domainName}: ${(err as Error).message}`);
    }
  }

  /**
   * Build the pushed tree: with the Docker engine when it has a `Dockerfile` and neither a
   * `.buildpacks` file nor `BUILDPACK_URL` picks buildpacks (as Dokku decides), else a slug. The
   * archive is kept in a temp file for the look at its top and the build that follows.
   */
  private async build(push: DeploySource, app: App, current: Release | null, onOutput: (line: string) => void): Promise<Built> {
    const env = current ? { ...current.env } : {};
    const preparation = push.preparation instanceof PreparedPushBuild ? push.preparation.build : undefined;
    const dir = await mkdtemp(path.join(tmpdir(), `flynn-push-${app.name}-`));
    try {
      const file = path.join(dir, 'source.tar');
      await pipeline(push.archive as Readable, createWriteStream(file));
      const probe = await probeSource(file);
      if (probe.dockerfile && !probe.buildpacks && !env.BUILDPACK_URL?.trim()) {
        await preparation?.discard();
        const docker = this.options.dockerfile?.docker ?? (this.options.executor.name === 'docker' ? new Dockerode() : undefined);
        if (!docker) throw new PushRejectedError('this app has a Dockerfile, but this cluster runs apps as host processes (process runtime): a Dockerfile app needs the Docker runtime');
        const image = await buildDockerfile({
          docker,
          context: createReadStream(file),
          app: app.name,
          tag: randomUUID().slice(0, 8),
          buildArgs: dockerBuildArgs(app.meta, env),
          ...(probe.procfile === undefined ? {} : { procfile: probe.procfile }),
          ...(this.options.dockerfile?.labels ? { labels: this.options.dockerfile.labels } : {}),
          ...(this.options.dockerfile?.network ? { network: this.options.dockerfile.network } : {}),
          ...(this.options.dockerfile?.shipImages ? { archive: { shelf: this.options.shelf } } : {}),
          ...(this.options.build?.timeoutMs === undefined ? {} : { timeoutMs: this.options.build.timeoutMs }),
          onOutput,
          ...(push.signal ? { signal: push.signal } : {}),
        });
        return { type: 'docker', url: image.imageId, ...(image.archive ? { archiveUrl: image.archive.url } : {}), processes: image.processes };
      }
      const build: BuildSlugOptions = {
        ...this.options.build,
        source: createReadStream(file),
        app: app.name,
        env,
        executor: this.options.executor,
        shelf: this.options.shelf,
        onOutput,
        signal: push.signal,
      };
      if (preparation) build.preparation = preparation;
      const result = await buildSlug(build);
      const processes: Built['processes'] = {};
      for (const [type, command] of Object.entries(result.processTypes)) processes[type] = { cmd: ['/bin/sh', '-c', command] };
      return { type: 'slug', url: result.slugUrl, sha256: result.slugSha256, processes };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}

/**
 * What a push of a release without a `web` type says instead of a URL: that nothing answers, the
 * types the release has (with their counts, and how to start one when none runs) and the ways to
 * declare a web process.
 */
function noWebLines(app: string, version: number, url: string, running: Record<string, number>, types: string[]): string[] {
  const idle = types.every((t) => !running[t]);
  const has =
    types.length === 0
      ? 'It has no process types.'
      : `Its process types: ${types.map((t) => `${t}=${running[t] ?? 0}`).join(' ')}${idle ? ` (start one with: flynn -a ${app} scale ${types[0]}=1)` : ''}`;
  return [
    `=====> Released v${version}, but ${app} has no web process: nothing answers at ${url}`,
    `       ${has}`,
    '       To serve HTTP, add a web process: a "web: <command>" line in a Procfile, a "start" script in package.json, or a server.js',
  ];
}
