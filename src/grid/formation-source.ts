/**
 * The controller's store as the scheduler's desired state: each controller formation (app +
 * release + counts) becomes a scheduler formation whose per-type spec starts the release's slug
 * with the slug runner. The other half of the controller ↔ scheduler seam beside the job runner.
 */
import { AsyncQueue } from '../common/async-queue.js';
import type { Logger } from '../common/logger.js';
import { silentLogger } from '../common/logger.js';
import { webService } from '../controller/default-route.js';
import type { Store } from '../controller/store.js';
import type { Artifact, Formation as ControllerFormation, Release } from '../controller/types.js';
import type { FormationEvent, FormationSource } from '../scheduler/formation-source.js';
import { HOST_ID_TAG, type Formation, type ProcessSpec } from '../scheduler/types.js';
import { slugRunnerCommand } from '../slug/runner.js';
import { SCHEDULER_JOB_RUNNER_DEFAULTS } from './job-runner.js';

export const STORE_FORMATION_DEFAULTS = Object.freeze({
  /** Image slug jobs run in (the process runtime ignores it): the image of one-off jobs too. */
  image: SCHEDULER_JOB_RUNNER_DEFAULTS.image,
  /** Port a web job listens on inside its container (`PORT`). */
  webPort: 8080,
});

export interface StoreFormationSourceOptions {
  store: Store;
  /** Default {@link STORE_FORMATION_DEFAULTS}.image. */
  image?: string;
  /** Default {@link STORE_FORMATION_DEFAULTS}.webPort. */
  webPort?: number;
  logger?: Logger;
}

/**
 * Build the scheduler formation of one controller formation. The scheduler's `app` is the app id
 * (stable, and what the controller's JobRunner is asked about); `release` is the release id.
 * A release with a slug artifact runs `slugRunnerCommand(type)` with the slug handed to the job by
 * the host (`artifact`) and as `SLUG_URL`; one with a docker artifact (a Dockerfile build) runs its
 * process types' commands in that image, the web type on its `EXPOSE`d port when it has one; a
 * release without an artifact runs its process types' commands.
 */
export function toSchedulerFormation(
  formation: ControllerFormation,
  app: { id: string; name: string },
  release: Release,
  artifact: Artifact | null,
  options: { image?: string; webPort?: number } = {},
): Formation {
  const image = options.image ?? STORE_FORMATION_DEFAULTS.image;
  const webPort = options.webPort ?? STORE_FORMATION_DEFAULTS.webPort;
  const types = new Set([...Object.keys(release.processes), ...Object.keys(formation.processes)]);
  const spec: Record<string, ProcessSpec> = {};
  const tags: Record<string, Record<string, string>> = {};
  for (const type of types) {
    const cmd = [...(release.processes[type]?.cmd ?? ['false'])];
    const s: ProcessSpec =
      artifact?.type === 'docker'
        ? { image: artifact.url, cmd, ...(artifact.archiveUrl ? { imageArchive: { url: artifact.archiveUrl } } : {}) }
        : artifact
          ? { image, cmd: slugRunnerCommand(type), env: { SLUG_URL: artifact.url }, artifact: { url: artifact.url, ...(artifact.sha256 === undefined ? {} : { sha256: artifact.sha256 }) } }
          : { image, cmd };
    const port = artifact?.type === 'docker' ? (release.processes[type]?.ports?.[0] ?? webPort) : webPort;
    if (type === 'web') s.ports = [{ port, service: webService(app.name) }];
    const p = release.processes[type];
    if (p?.volumes) s.volumes = p.volumes.map((v) => ({ ...v }));
    if (p?.alias) s.alias = p.alias;
    // A type with volumes runs on the host that has them (docs/volumes.md).
    if (p?.host) (tags[type] = { [HOST_ID_TAG]: p.host });
    spec[type] = s;
  }
  return { app: app.id, release: release.id, processes: { ...formation.processes }, env: { ...release.env }, spec, ...(Object.keys(tags).length > 0 ? { tags } : {}) };
}

/** A scheduler {@link FormationSource} over the controller's {@link Store}: list + watch. */
export class StoreFormationSource implements FormationSource {
  private readonly logger: Logger;

  constructor(private readonly options: StoreFormationSourceOptions) {
    this.logger = (options.logger ?? silentLogger).child({ component: 'formation-source' });
  }

  async list(): Promise<Formation[]> {
    const out: Formation[] = [];
    for (const f of await this.options.store.listFormations()) {
      const mapped = await this.map(f);
      if (mapped) out.push(mapped);
    }
    return out;
  }

  watch(options: { signal?: AbortSignal } = {}): AsyncIterable<FormationEvent> {
    // The store watch is cancelled as soon as the consumer stops or its signal aborts, even while
    // it waits for a change (an async generator could not be returned from in that state).
    const abort = new AbortController();
    const onAbort = () => abort.abort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const out = new AsyncQueue<FormationEvent>(() => {
      options.signal?.removeEventListener('abort', onAbort);
      abort.abort();
    });
    // Subscribe before listing, so that no change between the two is lost (a put seen twice is harmless).
    const changes = this.options.store.watchFormations({ signal: abort.signal });
    void (async () => {
      const iterator = changes[Symbol.asyncIterator]();
      const first = iterator.next();
      first.catch(() => undefined);
      out.push({ type: 'current', formations: await this.list() });
      for (let next = await first; !next.done; next = await iterator.next()) {
        const change = next.value;
        if (change.type === 'delete') {
          out.push({ type: 'delete', app: change.appId, release: change.releaseId });
          continue;
        }
        const mapped = await this.map(change.formation);
        if (mapped) out.push({ type: 'put', formation: mapped });
      }
      out.end();
    })().catch((err: unknown) => out.end(abort.signal.aborted ? undefined : err));
    return out;
  }

  private async map(f: ControllerFormation): Promise<Formation | undefined> {
    const { store } = this.options;
    try {
      const app = await store.getApp(f.appId);
      const release = await store.getRelease(app.id, f.releaseId);
      const artifact = release.artifactId ? await store.getArtifact(release.artifactId) : null;
      const opts: { image?: string; webPort?: number } = {};
      if (this.options.image !== undefined) opts.image = this.options.image;
      if (this.options.webPort !== undefined) opts.webPort = this.options.webPort;
      return toSchedulerFormation(f, app, release, artifact, opts);
    } catch (err) {
      // The app or release went away meanwhile: its delete follows.
      this.logger.warn('cannot map a formation', { app: f.appId, release: f.releaseId, err: (err as Error).message });
      return undefined;
    }
  }
}
