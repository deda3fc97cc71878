/**
 * Docker image helpers shared by the locally built images (runtime-image.ts, stack-image.ts):
 * inspect a tag, import a root filesystem tar, drop the image a rebuild replaced.
 */
import type Dockerode from 'dockerode';
import { HostErrorCodes, RuntimeImageError } from './errors.js';

export interface ImportQuery {
  repo: string;
  tag: string;
  /** Dockerfile instructions applied to the imported image (`ENV ...`, `CMD [...]`, `LABEL ...`). */
  changes: string[];
  abortSignal?: AbortSignal;
}

/** `POST /images/create?fromSrc=-`, consuming `tar` as it is written. Resolves with the new image id. */
export async function importTar(docker: Dockerode, tar: NodeJS.ReadableStream, query: ImportQuery): Promise<string> {
  const fail = (err: unknown) => new RuntimeImageError(HostErrorCodes.IMAGE_BUILD, `docker import failed: ${(err as Error).message ?? String(err)}`, { cause: err });
  const stream = await docker.importImage(tar, query).catch((err: unknown) => Promise.reject(fail(err)));
  // The engine answers with JSON progress lines; errors arrive in-band and followProgress rejects on them.
  const events = await new Promise<{ status?: string }[]>((resolve, reject) =>
    docker.modem.followProgress(stream, (err: Error | null, out: { status?: string }[]) => (err ? reject(fail(err)) : resolve(out))),
  );
  const id = events.map((e) => e.status).find((s) => s?.startsWith('sha256:'));
  if (!id) throw fail(new Error('the engine did not report an image id'));
  return id;
}

/** A rebuild leaves the image it replaces untagged: drop it, unless someone tagged it too or a container still uses it. */
export async function removeIfUntagged(docker: Dockerode, id: string): Promise<void> {
  const old = docker.getImage(id);
  const info = await old.inspect().catch(() => undefined);
  if (info && (info.RepoTags ?? []).length === 0) await old.remove().catch(() => {});
}

/** The image's inspect data, or undefined when there is none under `name`. Throws a {@link RuntimeImageError} when Docker is unreachable. */
export async function inspectImage(docker: Dockerode, name: string): Promise<Dockerode.ImageInspectInfo | undefined> {
  try {
    return await docker.getImage(name).inspect();
  } catch (err) {
    const status = (err as { statusCode?: number }).statusCode;
    if (status === 404) return undefined;
    // No HTTP status means no answer at all: the socket is missing, refused or not ours to read.
    const code = status === undefined ? HostErrorCodes.DOCKER_UNAVAILABLE : HostErrorCodes.IMAGE_BUILD;
    const what = status === undefined ? 'cannot reach the Docker engine' : `cannot inspect image ${name}`;
    throw new RuntimeImageError(code, `${what}: ${(err as Error).message}`, { cause: err });
  }
}

/** Tag the imported image `<repo>:latest` too, drop the one it replaced, and report it. */
export async function finishImport(docker: Dockerode, id: string, repo: string, previousId: string | undefined): Promise<Dockerode.ImageInspectInfo> {
  const image = docker.getImage(id);
  await image.tag({ repo, tag: 'latest' });
  const built = await image.inspect();
  if (previousId !== undefined && previousId !== built.Id) await removeIfUntagged(docker, previousId);
  return built;
}

/** `registry:5000/a/b:tag` → `{ repo: 'registry:5000/a/b', tag: 'tag' }`; no tag means `latest`. */
export function splitName(name: string): { repo: string; tag: string } {
  const colon = name.lastIndexOf(':');
  return colon > name.lastIndexOf('/') ? { repo: name.slice(0, colon), tag: name.slice(colon + 1) } : { repo: name, tag: 'latest' };
}

/** The value of `name` in the image's `ENV`, if it sets one. */
export function imageEnv(info: Dockerode.ImageInspectInfo, name: string): string | undefined {
  const entry = (info.Config?.Env ?? []).find((e) => e.startsWith(`${name}=`));
  return entry?.slice(name.length + 1);
}
