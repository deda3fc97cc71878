/**
 * The runtime image builder. No registry is reachable on the machines flynn-ts runs its tests on,
 * so the image every job runs in is built locally with no network: a root filesystem holding the
 * host's own `node` (with the shared libraries it links) and a static busybox is streamed as a tar
 * straight into `docker import`. With a registry at hand, point the config at any image instead.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import Dockerode from 'dockerode';
import { pack, type Pack } from 'tar-stream';
import { finishImport, importTar, inspectImage, splitName } from './docker-image.js';
import { HostErrorCodes, RuntimeImageError } from './errors.js';

export { RuntimeImageError } from './errors.js';
export type { RuntimeImageErrorCode } from './errors.js';

const execFileAsync = promisify(execFile);

/**
 * Everything that decides the image's content besides the host binaries. Its hash is part of the
 * default tag, so changing anything here yields a new tag and `ensureRuntimeImage` rebuilds.
 */
const RECIPE = {
  /** Bump when the assembly code below changes in a way this object does not show. */
  revision: 1,
  repo: 'flynn-ts/runtime',
  nodeAt: 'usr/local/bin/node',
  busyboxAt: 'bin/busybox',
  caCertsAt: 'etc/ssl/certs/ca-certificates.crt',
  files: {
    'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n',
    'etc/group': 'root:x:0:\napp:x:1000:\nnogroup:x:65534:\n',
    'etc/nsswitch.conf': 'passwd: files\ngroup: files\nhosts: files dns\n',
  },
  dirs: [
    { name: 'tmp', mode: 0o1777, uid: 0 },
    { name: 'root', mode: 0o700, uid: 0 },
    { name: 'app', mode: 0o755, uid: 1000 },
  ],
  changes: [
    'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    'WORKDIR /app',
    'LABEL io.flynn-ts.image=runtime',
    'CMD ["node"]',
  ],
} as const;

const RECIPE_HASH = createHash('sha256').update(JSON.stringify(RECIPE)).digest('hex').slice(0, 10);

/** The image name for a node version: `flynn-ts/runtime:<node version>-<recipe hash>`. */
function runtimeImageName(nodeVersion: string): string {
  return `${RECIPE.repo}:${nodeVersion}-${RECIPE_HASH}`;
}

export const RUNTIME_IMAGE_DEFAULTS = Object.freeze({
  /** The versioned name built from this process's node; `<repo>:latest` is tagged alongside. */
  name: runtimeImageName(process.versions.node),
  /** The name tagged on every build. */
  latest: `${RECIPE.repo}:latest`,
  /** `$STACK` of builds and jobs the platform runs on this image (it sets no `STACK` of its own). */
  stack: 'flynn-ts-slim',
  /** The node binary copied into the image. */
  nodePath: process.execPath,
  /** A statically linked busybox (Debian/Ubuntu: `apt-get install busybox-static`). */
  busyboxPath: '/bin/busybox',
});

export interface RuntimeImageOptions {
  /** Docker client. Default: `new Dockerode()` (the local socket or DOCKER_HOST). */
  docker?: Dockerode;
  /** Image name with tag. Default: {@link RUNTIME_IMAGE_DEFAULTS}.name for the node at `nodePath`. */
  name?: string;
  /** Host node binary to ship. Default: the running node. */
  nodePath?: string;
  /** Host busybox binary to ship. Default `/bin/busybox`. */
  busyboxPath?: string;
  /** Called with one human-readable line per build step. */
  onProgress?: (line: string) => void;
}

export interface RuntimeImage {
  /** The name the image was built or found under. */
  name: string;
  /** `sha256:...` image id. */
  id: string;
  sizeBytes: number;
}

/** Whether `name` exists in the engine. Throws a {@link RuntimeImageError} when Docker is unreachable. */
export async function runtimeImageExists(docker: Dockerode, name: string): Promise<boolean> {
  return (await inspectImage(docker, name)) !== undefined;
}

/** Return the runtime image, building it only when it is missing. */
export async function ensureRuntimeImage(opts: RuntimeImageOptions = {}): Promise<RuntimeImage> {
  const docker = opts.docker ?? new Dockerode();
  const name = opts.name ?? runtimeImageName(await nodeVersion(opts.nodePath ?? RUNTIME_IMAGE_DEFAULTS.nodePath));
  const found = await inspectImage(docker, name);
  if (found) {
    opts.onProgress?.(`${name} already present (${found.Id.slice(0, 19)}), not rebuilt`);
    return { name, id: found.Id, sizeBytes: found.Size };
  }
  return buildRuntimeImage({ ...opts, docker, name });
}

/** Build the runtime image (always) and tag it `name` and `<repo>:latest`. */
export async function buildRuntimeImage(opts: RuntimeImageOptions = {}): Promise<RuntimeImage> {
  const docker = opts.docker ?? new Dockerode();
  const progress = opts.onProgress ?? (() => {});
  const nodePath = opts.nodePath ?? RUNTIME_IMAGE_DEFAULTS.nodePath;
  const busyboxPath = opts.busyboxPath ?? RUNTIME_IMAGE_DEFAULTS.busyboxPath;
  const version = await nodeVersion(nodePath);
  const name = opts.name ?? runtimeImageName(version);
  const { repo, tag } = splitName(name);
  const previous = await inspectImage(docker, name);

  const entries = await assembleRootfs(nodePath, busyboxPath, progress);
  progress(`importing ${entries.size} entries into Docker as ${name}`);
  const tar = pack();
  const abort = new AbortController();
  const changes = [...RECIPE.changes, `LABEL io.flynn-ts.node-version=${version}`];
  // tar-stream's Pack is a streamx Readable: it pipes like a Node stream, the types just do not say so.
  const imported = importTar(docker, tar as unknown as NodeJS.ReadableStream, { repo, tag, changes, abortSignal: abort.signal });
  // If the engine fails it stops reading, so the writer must stop too; and a writer failure must
  // end the upload, or the engine waits for the rest of the tar forever.
  imported.catch((err: Error) => tar.destroy(err));
  const written = writeTar(tar, entries).catch((err: Error) => {
    abort.abort(err);
    throw new RuntimeImageError(HostErrorCodes.IMAGE_BUILD, `cannot write the root filesystem: ${err.message}`, { cause: err });
  });
  const [, id] = await Promise.all([written, imported]);

  const built = await finishImport(docker, id, repo, previous?.Id);
  progress(`built ${name} (${built.Id.slice(0, 19)}, ${(built.Size / 1e6).toFixed(1)} MB), also tagged ${repo}:latest`);
  return { name, id: built.Id, sizeBytes: built.Size };
}

/** A tar entry, keyed by its path inside the image (no leading slash). */
type Entry =
  | { type: 'file'; mode: number; hostPath: string }
  | { type: 'file'; mode: number; content: string | Buffer }
  | { type: 'symlink'; target: string }
  | { type: 'directory'; mode: number; uid: number };

async function assembleRootfs(nodePath: string, busyboxPath: string, progress: (line: string) => void): Promise<Map<string, Entry>> {
  const entries = new Map<string, Entry>();
  const busybox = await hostFile(busyboxPath, 'busybox (Debian/Ubuntu: apt-get install busybox-static)');
  // `--list-full` gives each applet's canonical path (bin/sh, usr/bin/env, ...), so `#!/usr/bin/env` works.
  const applets = (await run(busybox, ['--list-full'])).split('\n').filter(Boolean);
  for (const applet of applets) entries.set(applet, { type: 'symlink', target: `/${RECIPE.busyboxAt}` });
  entries.set(RECIPE.busyboxAt, { type: 'file', mode: 0o755, hostPath: busybox });

  entries.set(RECIPE.nodeAt, { type: 'file', mode: 0o755, hostPath: await hostFile(nodePath, 'node') });
  // Libraries go where ldd found them (the loader at the path node's ELF header names); the
  // content is read through any host symlinks, so a merged-/usr host needs no symlinked dirs.
  const libs = [...new Set([...(await sharedLibraries(nodePath)), ...(await sharedLibraries(busybox))])];
  for (const lib of libs) entries.set(lib.slice(1), { type: 'file', mode: 0o755, hostPath: lib });

  for (const [path, content] of Object.entries(RECIPE.files)) entries.set(path, { type: 'file', mode: 0o644, content });
  const certs = await readFile(`/${RECIPE.caCertsAt}`).catch(() => undefined);
  if (certs) entries.set(RECIPE.caCertsAt, { type: 'file', mode: 0o644, content: certs });
  for (const dir of RECIPE.dirs) entries.set(dir.name, { type: 'directory', mode: dir.mode, uid: dir.uid });

  // Every parent directory gets an explicit entry, else the engine invents its modes.
  for (const path of [...entries.keys()]) {
    for (let dir = parentOf(path); dir && !entries.has(dir); dir = parentOf(dir)) {
      entries.set(dir, { type: 'directory', mode: 0o755, uid: 0 });
    }
  }
  progress(`rootfs: node ${nodePath}, ${libs.length} shared libraries, busybox with ${applets.length} applets, certs ${certs ? 'copied' : 'absent on host'}`);
  return entries;
}

/** Absolute paths of the shared libraries `binary` loads, the dynamic loader included; [] when static. */
async function sharedLibraries(binary: string): Promise<string[]> {
  let out: string;
  try {
    out = (await execFileAsync('ldd', [binary])).stdout;
  } catch (err) {
    // ldd exits 1 on a static binary; anything else is a real failure.
    const { stdout, stderr } = err as { stdout?: string; stderr?: string };
    if (/not a dynamic executable|statically linked/.test(`${stdout}${stderr}`)) return [];
    throw new RuntimeImageError(HostErrorCodes.IMAGE_BUILD, `ldd ${binary} failed: ${(err as Error).message}`, { cause: err });
  }
  const missing = out.match(/^\s*(\S+) => not found/m);
  if (missing) throw new RuntimeImageError(HostErrorCodes.IMAGE_BUILD, `${binary} needs ${missing[1]}, which is not installed on this host`);
  // Lines look like `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` or `/lib64/ld-linux-x86-64.so.2 (0x...)`;
  // the vdso has no path and is skipped.
  return [...out.matchAll(/^\s*(?:\S+ => )?(\/\S+) \(0x[0-9a-f]+\)$/gm)].map((m) => m[1]!);
}

/** Write entries in path order (parents first, and the same bytes for the same inputs). */
async function writeTar(tar: Pack, entries: Map<string, Entry>): Promise<void> {
  // A fixed mtime keeps the layer's digest stable across rebuilds, so the engine stores it once.
  const common = { mtime: new Date(0), uid: 0, gid: 0 };
  for (const name of [...entries.keys()].sort()) {
    const entry = entries.get(name)!;
    if (entry.type === 'directory') {
      await addEntry(tar, { ...common, name, type: 'directory', mode: entry.mode, uid: entry.uid, gid: entry.uid });
    } else if (entry.type === 'symlink') {
      await addEntry(tar, { ...common, name, type: 'symlink', linkname: entry.target, mode: 0o777 });
    } else if ('content' in entry) {
      await addEntry(tar, { ...common, name, type: 'file', mode: entry.mode }, entry.content);
    } else {
      const { size } = await stat(entry.hostPath);
      await pipeline(createReadStream(entry.hostPath), tar.entry({ ...common, name, type: 'file', mode: entry.mode, size }));
    }
  }
  tar.finalize();
}

function addEntry(tar: Pack, header: Parameters<Pack['entry']>[0], content?: string | Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error | null) => (err ? reject(err) : resolve());
    if (content === undefined) tar.entry(header, done);
    else tar.entry(header, content, done);
  });
}

async function nodeVersion(nodePath: string): Promise<string> {
  return (await run(await hostFile(nodePath, 'node'), ['--version'])).trim().replace(/^v/, '');
}

async function hostFile(path: string, what: string): Promise<string> {
  const info = await stat(path).catch(() => undefined);
  if (!info?.isFile()) throw new RuntimeImageError(HostErrorCodes.IMAGE_BUILD, `${what} not found at ${path}`);
  return path;
}

async function run(file: string, args: string[]): Promise<string> {
  try {
    return (await execFileAsync(file, args)).stdout;
  } catch (err) {
    throw new RuntimeImageError(HostErrorCodes.IMAGE_BUILD, `${file} ${args.join(' ')} failed: ${(err as Error).message}`, { cause: err });
  }
}

function parentOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '' : path.slice(0, slash);
}
