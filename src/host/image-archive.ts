/**
 * A Dockerfile app's image on a host whose engine did not build it: before such a job starts, the
 * agent checks that its engine has the pinned image id and, when it lacks it, `docker load`s the
 * image's archive from shelf (a signed URL, as a slug's) and checks that the loaded image has that
 * very id. The archive is written by the build (src/slug/image-archive.ts).
 */
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type Dockerode from 'dockerode';
import { ArtifactFetchError, ImageLoadError } from './errors.js';
import type { ImageLoader, Runtime } from './runtime.js';
import { traceHost } from './trace.js';
import type { JobSpec } from './types.js';

/** The URL without its query (a signed URL's signature stays out of messages and logs). */
function shown(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

async function hasImage(docker: Dockerode, image: string): Promise<boolean> {
  try {
    await docker.getImage(image).inspect();
    return true;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return false;
    throw new ImageLoadError(`cannot inspect image ${image}: ${(err as Error).message}`, { cause: err });
  }
}

/** A line of `POST /images/load`'s answer. */
interface LoadEvent {
  stream?: string;
  error?: string;
  errorDetail?: { message?: string };
}

/** What `POST /images/load` says it loaded: image ids (`Loaded image ID: sha256:…`) or names (`Loaded image: repo:tag`). */
function loadedRefs(events: LoadEvent[]): string[] {
  return events.flatMap((e) => /^Loaded image(?: ID)?: (\S+)/.exec(e.stream?.trim() ?? '')?.[1] ?? []);
}

async function load(docker: Dockerode, image: string, url: string, signal?: AbortSignal): Promise<'present' | 'loaded'> {
  if (await hasImage(docker, image)) return 'present';
  const res = await fetch(url, signal ? { signal } : {}).catch((err: unknown) => {
    throw new ArtifactFetchError(`cannot fetch the image archive of ${image} from ${shown(url)}: ${(err as Error).message}`, { cause: err });
  });
  if (!res.ok || !res.body) throw new ArtifactFetchError(`cannot fetch the image archive of ${image} from ${shown(url)}: HTTP ${res.status}`);
  const archive = Readable.fromWeb(res.body as WebReadableStream);
  let events: LoadEvent[];
  try {
    const stream = await docker.loadImage(archive, { quiet: true });
    events = await new Promise((resolve, reject) => docker.modem.followProgress(stream, (err: Error | null, out: LoadEvent[]) => (err ? reject(err) : resolve(out))));
    // The engine reports a failed load in-band, after its 200.
    const failed = events.find((e) => e.error !== undefined);
    if (failed) throw new Error(failed.errorDetail?.message ?? failed.error);
  } catch (err) {
    archive.destroy();
    const message = (err as Error).message ?? String(err);
    // The archive leaves out the base image's layers (the stack): a host without them cannot load it.
    const hint = /layer\.tar: no such file or directory/.test(message) ? ' (it leaves out the layers of its base image, which this engine lacks: give this host the same base image, e.g. the stack with `npm run images`)' : '';
    throw new ImageLoadError(`docker load of the image archive of ${image} failed${hint}: ${message.trim().split('\n')[0]}`, { cause: err });
  }
  if (!(await hasImage(docker, image))) {
    const refs = loadedRefs(events);
    const ids = await Promise.all(refs.map((ref) => docker.getImage(ref).inspect().then((i) => i.Id, () => ref)));
    throw new ImageLoadError(`the image archive at ${shown(url)} holds ${ids.join(', ') || 'no image'}, not the job's image ${image}`);
  }
  return 'loaded';
}

/** An {@link ImageLoader} over one Docker engine. */
export function dockerImageLoader(docker: Dockerode): ImageLoader {
  const loading = new Map<string, Promise<'present' | 'loaded'>>();
  return {
    ensure(image, url, options = {}) {
      let pending = loading.get(image);
      if (!pending) {
        pending = load(docker, image, url, options.signal).finally(() => loading.delete(image));
        loading.set(image, pending);
      }
      return pending;
    },
  };
}

/**
 * Before a job with an image archive starts: make its image present on the runtime's engine
 * (a no-op on a runtime without images, and for a job without an archive).
 */
export async function ensureJobImage(runtime: Runtime, job: JobSpec, options: { timeoutMs: number }): Promise<void> {
  if (!job.imageArchive || job.image === undefined || !runtime.images) return;
  const done = await runtime.images.ensure(job.image, job.imageArchive.url, { signal: AbortSignal.timeout(options.timeoutMs) });
  if (done === 'loaded') traceHost('image loaded', job.id);
}
