import type { Logger } from '../common/logger.js';
import { traceDeployer, type Deployer } from './deployer.js';
import { DeployFailedError, DeployInProgressError } from './errors.js';
import { appScale, countsForRelease, sameScale } from './scale.js';
import type { DeployStep, Store } from './store.js';
import { deployStateOf, type App, type Deployment, type DeploymentStrategy, type Formation, type Release } from './types.js';

interface Active {
  deploymentId: string;
  abort: AbortController;
  done: Promise<Deployment | undefined>;
}

/** What {@link DeploymentManager.recoverInterrupted} did. */
export interface Recovered {
  /** Deployments whose new release was up: switched to it, the old release's formation removed. */
  finished: number;
  /** Deployments whose new release was not (known to be) up: its formation removed, the old one restored. */
  rolledBack: number;
}

/**
 * Runs deployments in the background, one at a time per app, as recorded state machines
 * ({@link DeployState}): every step is committed with its formation and release writes in one
 * store transaction ({@link Store.stepDeployment}) before anything acts on it. The
 * {@link Deployer} brings the new release up (`starting-new` steps); this switches the app to it
 * (`new-up`), stops the old release (`stopping-old`, `done`), or restores the old one
 * (`rolling-back`, `failed`). A controller that restarts calls {@link recoverInterrupted}.
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
      const deployment = await this.store.createDeployment({
        appId: app.id,
        oldReleaseId: app.releaseId,
        newReleaseId: release.id,
        strategy: strategy ?? app.strategy,
        status: 'pending',
        state: 'pending',
        processes: counts.processes,
        oldProcesses: from?.processes ?? null,
        ...(counts.firstWeb ? { firstWeb: true as const } : {}),
      });
      traceDeployer('state pending', app.name);
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

  /**
   * Finish or undo every deployment a controller that stopped left in flight (call before taking
   * deployments): one whose new release was up (`new-up`, `stopping-old`) is finished; any other
   * is rolled back, so the previous release, whose jobs were never stopped before the new ones
   * were up, keeps serving. Afterwards each app runs one release's formation.
   */
  async recoverInterrupted(): Promise<Recovered> {
    const out: Recovered = { finished: 0, rolledBack: 0 };
    for (const app of await this.store.listApps()) {
      for (const d of await this.store.listDeployments(app.id)) {
        const state = deployStateOf(d);
        if (state === 'done' || state === 'failed') continue;
        const log = this.logger.child({ app: app.name, deployment: d.id });
        if (state === 'new-up' || state === 'stopping-old') {
          log.warn('finishing a deployment interrupted after its new release was up', { state });
          await this.finish(d, app.name);
          out.finished++;
        } else if (state === 'rolling-back') {
          await this.step(d, app.name, { state: 'failed' });
          out.rolledBack++;
        } else {
          log.warn('rolling back a deployment interrupted before its new release was up', { state });
          await this.rollBack(d, app.name, 'interrupted by a controller restart before the new release was up: the previous release was restored');
          out.rolledBack++;
        }
      }
    }
    return out;
  }

  private async run(app: App, deployment: Deployment, from: Formation | null, signal: AbortSignal): Promise<Deployment | undefined> {
    const log = this.logger.child({ app: app.name, deployment: deployment.id });
    const onStep = (step: string) => {
      log.info(step);
      void this.store.appendEvent({ object: 'deployment', op: 'update', appId: app.id, objectId: deployment.id, data: { ...deployment, status: 'running', step } }).catch(() => undefined);
    };
    let d = deployment;
    try {
      await this.deployer.deploy(
        { deploymentId: d.id, app, strategy: d.strategy, from, to: { releaseId: d.newReleaseId, processes: d.processes } },
        { signal, onStep, writeFormations: async (formations) => void (d = await this.step(d, app.name, { state: 'starting-new', formations })) },
      );
    } catch (err) {
      log.warn('deployment failed', { err: (err as Error).message });
      onStep('new jobs did not come up: restoring the old release');
      const error = err instanceof DeployFailedError ? err.message : `deployment ${d.id} failed: ${(err as Error).message}`;
      return this.rollBack(d, app.name, error).catch(() => undefined);
    }
    try {
      const done = await this.finish(d, app.name);
      log.info('deployment complete');
      return done;
    } catch (err) {
      // Left at its last step; the next controller start finishes it.
      log.warn('deployment could not be finished', { err: (err as Error).message });
      return undefined;
    }
  }

  /** Record `step` and announce it (tests kill the controller right here). */
  private async step(d: Deployment, appName: string, step: DeployStep): Promise<Deployment> {
    const next = await this.store.stepDeployment(d.appId, d.id, step);
    traceDeployer(`state ${step.state}`, appName);
    return next;
  }

  /** From `pending`/`starting-new`/`new-up`/`stopping-old`: switch the app to the new release, remove the old formation, done. */
  private async finish(d: Deployment, appName: string): Promise<Deployment> {
    let state = deployStateOf(d);
    if (state === 'pending' || state === 'starting-new') {
      d = await this.step(d, appName, { state: 'new-up', appReleaseId: d.newReleaseId });
      state = 'new-up';
    }
    if (state === 'new-up') {
      const old = d.oldReleaseId !== null && d.oldReleaseId !== d.newReleaseId ? [{ releaseId: d.oldReleaseId, processes: null }] : [];
      d = await this.step(d, appName, { state: 'stopping-old', formations: old });
    }
    return this.step(d, appName, { state: 'done' });
  }

  /** From `pending`/`starting-new`: remove the new formation and restore the old one at its recorded counts, in one step; then failed. */
  private async rollBack(d: Deployment, appName: string, error: string): Promise<Deployment> {
    const formations: NonNullable<DeployStep['formations']> = [];
    if (d.oldReleaseId === d.newReleaseId) formations.push({ releaseId: d.newReleaseId, processes: d.oldProcesses ?? null });
    else {
      formations.push({ releaseId: d.newReleaseId, processes: null });
      // Deployments stored before the old counts were recorded leave the old formation as it is.
      if (d.oldReleaseId !== null && d.oldProcesses) formations.push({ releaseId: d.oldReleaseId, processes: d.oldProcesses });
    }
    d = await this.step(d, appName, { state: 'rolling-back', formations, error });
    return this.step(d, appName, { state: 'failed' });
  }
}
