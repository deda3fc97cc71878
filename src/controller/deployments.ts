import type { Logger } from '../common/logger.js';
import type { Deployer } from './deployer.js';
import { DeployInProgressError } from './errors.js';
import { appScale, countsForRelease, sameScale } from './scale.js';
import type { Store } from './store.js';
import type { App, Deployment, DeploymentStrategy, Release } from './types.js';

interface Active {
  deploymentId: string;
  abort: AbortController;
  done: Promise<Deployment | undefined>;
}

/**
 * Runs deployments in the background, one at a time per app, through a {@link Deployer}; records
 * their status and progress in the store and switches the app's release only when one completes.
 */
export class DeploymentManager {
  private readonly active = new Map<string, Active>();
  private readonly reserved = new Set<string>();

  constructor(
    private readonly store: Store,
    private readonly deployer: Deployer,
    private readonly logger: Logger,
  ) {}

  /** Start moving `app` to `release`; resolves with the pending deployment once recorded. */
  async start(app: App, release: Release, strategy?: DeploymentStrategy): Promise<Deployment> {
    const running = this.active.get(app.id);
    if (running) throw new DeployInProgressError(app.name, running.deploymentId);
    if (this.reserved.has(app.id)) throw new DeployInProgressError(app.name, 'starting');
    this.reserved.add(app.id);
    try {
      const from = app.releaseId ? ((await this.store.getFormation(app.id, app.releaseId)) ?? null) : null;
      // The release runs its types at the app's counts; the counts of types it lacks are kept (see scale.ts).
      const counts = countsForRelease(appScale(app, from ?? undefined), release.processes);
      if (!sameScale(counts.scale, app.scale)) await this.store.setAppScale(app.id, counts.scale);
      const processes = counts.processes;
      const deployment = await this.store.createDeployment({
        appId: app.id,
        oldReleaseId: app.releaseId,
        newReleaseId: release.id,
        strategy: strategy ?? app.strategy,
        status: 'pending',
        processes,
      });
      const abort = new AbortController();
      const done = this.run(app, deployment, from, abort.signal);
      this.active.set(app.id, { deploymentId: deployment.id, abort, done });
      void done.finally(() => this.active.delete(app.id));
      return deployment;
    } finally {
      this.reserved.delete(app.id);
    }
  }

  /** Abort the app's in-flight deployment (it fails and restores the old release) and wait for it. */
  async abort(appId: string, reason: string): Promise<void> {
    const active = this.active.get(appId);
    if (!active) return;
    active.abort.abort(new Error(reason));
    await active.done;
  }

  /** Resolve when the app's in-flight deployment (if any) is finished. */
  async settled(appId: string): Promise<void> {
    await this.active.get(appId)?.done;
  }

  /** Abort in-flight deployments (they fail and restore the old release) and wait for them. */
  async close(): Promise<void> {
    const all = [...this.active.values()];
    for (const a of all) a.abort.abort(new Error('controller is shutting down'));
    await Promise.all(all.map((a) => a.done));
  }

  /** Deployments left `pending`/`running` by a controller that stopped are marked failed. */
  async failInterrupted(): Promise<number> {
    let n = 0;
    for (const app of await this.store.listApps()) {
      for (const d of await this.store.listDeployments(app.id)) {
        if (d.status === 'pending' || d.status === 'running') {
          await this.store.updateDeployment(app.id, d.id, { status: 'failed', error: 'interrupted by a controller restart', finishedAt: new Date().toISOString() });
          n++;
        }
      }
    }
    return n;
  }

  private async run(app: App, deployment: Deployment, from: Awaited<ReturnType<Store['getFormation']>> | null, signal: AbortSignal): Promise<Deployment | undefined> {
    const log = this.logger.child({ app: app.name, deployment: deployment.id });
    try {
      await this.store.updateDeployment(app.id, deployment.id, { status: 'running' });
      await this.deployer.deploy(
        { deploymentId: deployment.id, app, strategy: deployment.strategy, from: from ?? null, to: { releaseId: deployment.newReleaseId, processes: deployment.processes } },
        {
          signal,
          onStep: (step) => {
            log.info(step);
            void this.store.appendEvent({ object: 'deployment', op: 'update', appId: app.id, objectId: deployment.id, data: { ...deployment, status: 'running', step } }).catch(() => undefined);
          },
        },
      );
      await this.store.setAppRelease(app.id, deployment.newReleaseId);
      log.info('deployment complete');
      return await this.store.updateDeployment(app.id, deployment.id, { status: 'complete', finishedAt: new Date().toISOString() });
    } catch (err) {
      log.warn('deployment failed', { err: (err as Error).message });
      try {
        return await this.store.updateDeployment(app.id, deployment.id, { status: 'failed', error: (err as Error).message, finishedAt: new Date().toISOString() });
      } catch {
        return undefined;
      }
    }
  }
}
