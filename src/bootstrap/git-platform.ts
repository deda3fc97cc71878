/**
 * The git receiver's {@link GitPlatform} over the controller: keys and apps from its store, and a
 * push deployed as flynn-receive does it (build the slug → artifact → release → deploy → wait).
 */
import { tracer } from '../common/trace.js';
import type { Readable } from 'node:stream';
import type { ControllerClient } from '../controller/client.js';
import type { Store } from '../controller/store.js';
import type { GitPlatform } from '../git/receiver.js';
import type { OfferedKey, Push, PushPreparation } from '../git/types.js';
import { buildSlug, prepareSlugBuild, SlugBuildPreparation, type BuildSlugOptions } from '../slug/builder.js';
import type { BuildExecutor } from '../slug/executor.js';
import type { SlugShelf } from '../slug/types.js';
import { webService } from './formation-source.js';

export const CONTROLLER_GIT_PLATFORM_DEFAULTS = Object.freeze({
  /** How long a deployment may take before the push is rejected, in ms. */
  deployTimeoutMs: 120_000,
  /** How often the deployment's status is polled while the pusher waits, in ms. */
  deployPollMs: 25,
});

export interface ControllerGitPlatformOptions {
  /** Read directly: keys (authorize) and apps. */
  store: Store;
  /** Artifacts, releases and deployments go through the controller's API (its deployment manager). */
  client: ControllerClient;
  shelf: SlugShelf;
  executor: BuildExecutor;
  /** Cluster domain: the default route of app `a` is `a.<domain>`. */
  domain: string;
  /** The URL printed to the pusher: `http://<app>.<domain>:<routerPort>`. Omit the port for 80. */
  routerPort?: number;
  /** Extra build options (buildpacks, memory, timeouts). */
  build?: Pick<BuildSlugOptions, 'buildpacksDir' | 'buildpacks' | 'npmDir' | 'offline' | 'cache' | 'memoryBytes' | 'timeoutMs'>;
  /** Default {@link CONTROLLER_GIT_PLATFORM_DEFAULTS}.deployTimeoutMs. */
  deployTimeoutMs?: number;
}

/** Deploy phases are published on this `node:diagnostics_channel` as `{ phase, app }` (tracing, benchmarks). */
export const DEPLOY_TRACE_CHANNEL = 'flynn-ts:deploy';
const publish = tracer(DEPLOY_TRACE_CHANNEL);
/** Publish a deploy phase on {@link DEPLOY_TRACE_CHANNEL}. */
export const traceDeploy = (phase: string, app: string, jobId?: string) => publish(phase, jobId === undefined ? { app } : { app, jobId });

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
      }),
    );
  }

  async authorize(key: OfferedKey): Promise<boolean> {
    return (await this.options.store.listKeys()).some((k) => k.fingerprint === key.fingerprint);
  }

  async appExists(app: string): Promise<boolean> {
    try {
      return (await this.options.store.getApp(app)).name === app;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  async deploy(push: Push): Promise<void> {
    const { store, client, domain } = this.options;
    const app = await store.getApp(push.app);
    const current = app.releaseId ? await store.getRelease(app.id, app.releaseId) : null;
    const build: BuildSlugOptions = {
      ...this.options.build,
      source: push.archive as Readable,
      app: app.name,
      env: current ? { ...current.env } : {},
      executor: this.options.executor,
      shelf: this.options.shelf,
      onOutput: push.output,
      signal: push.signal,
    };
    if (push.preparation instanceof PreparedPushBuild) build.preparation = push.preparation.build;
    traceDeploy('build start', app.name);
    const result = await buildSlug(build);
    traceDeploy('build done', app.name);
    const processes: Record<string, { cmd: string[] }> = {};
    for (const [type, command] of Object.entries(result.processTypes)) processes[type] = { cmd: ['/bin/sh', '-c', command] };
    const artifact = await client.createArtifact({ url: result.slugUrl, processes });
    const release = await client.createRelease(app.name, { artifactId: artifact.id, env: current ? { ...current.env } : {} });
    push.output(`-----> Releasing v${release.version}...`);
    traceDeploy('release created', app.name);
    if (app.releaseId === null && processes.web) {
      const domainName = `${app.name}.${domain}`;
      const routes = await store.listRoutes(app.id);
      if (!routes.some((r) => r.type === 'http' && r.domain === domainName)) {
        try {
          await client.createRoute(app.name, { type: 'http', domain: domainName, service: webService(app.name) });
        } catch (err) {
          push.output(` !     cannot add the default route ${domainName}: ${(err as Error).message}`);
        }
      }
    }
    const deployment = await client.deploy(app.name, release.id);
    traceDeploy('deployment started', app.name);
    push.output(`-----> Deploying v${release.version} (${Object.entries(deployment.processes).map(([t, n]) => `${t}=${n}`).join(' ') || 'no processes'})...`);
    // A failed deployment throws: the push is rejected and the previous release keeps serving.
    await client.waitForDeployment(app.name, deployment.id, { timeoutMs: this.options.deployTimeoutMs ?? CONTROLLER_GIT_PLATFORM_DEFAULTS.deployTimeoutMs, pollMs: CONTROLLER_GIT_PLATFORM_DEFAULTS.deployPollMs, signal: push.signal });
    traceDeploy('deployment complete', app.name);
    push.output(`=====> ${app.name} deployed to ${appUrl(app.name, domain, this.options.routerPort)}`);
  }
}
