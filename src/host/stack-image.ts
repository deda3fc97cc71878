/**
 * The stack image: a real Debian root filesystem (like Heroku's stack images or Flynn's cedarish)
 * that builds and apps run in. `mmdebstrap` makes it from the Debian apt sources this machine is
 * configured with (read from /etc/apt, never a hard-coded mirror), with bash, git, curl, python3,
 * make/g++, locales and tzdata, plus the host's own node, npm and corepack in /usr/local. The root
 * filesystem streams as a tar from mmdebstrap's stdout straight into `docker import`.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import Dockerode from 'dockerode';
import { debianSources, parseDeb822Sources, parseOneLineSources, parseOsRelease } from './apt-sources.js';
import { finishImport, imageEnv, importTar, inspectImage, splitName } from './docker-image.js';
import { HostErrorCodes, RuntimeImageError } from './errors.js';

const execFileAsync = promisify(execFile);

/** Where the image's node runtime lives. */
const NODE_PREFIX = '/usr/local';

/**
 * Everything that decides the image's content besides the apt sources and the host's node. Its
 * hash is part of the default tag, so a change here yields a new tag and `ensureStackImage` rebuilds.
 */
const RECIPE = {
  /** Bump when the build code below changes in a way this object does not show. */
  revision: 2,
  repo: 'flynn-ts/stack',
  variant: 'minbase',
  packages: [
    'bash', 'coreutils', 'curl', 'git', 'ca-certificates', 'tar', 'gzip', 'xz-utils', 'unzip',
    'python3', 'python3-venv', 'python3-pip', 'make', 'g++', 'locales', 'tzdata', 'procps',
    // node links libstdc++ and libgcc_s (g++ brings them too, but node needs them on its own).
    'libstdc++6', 'libgcc-s1',
  ],
  /** Man pages, docs and message catalogues are dead weight in a container (copyright files stay). */
  dpkgOptions: [
    'path-exclude=/usr/share/man/*',
    'path-exclude=/usr/share/info/*',
    'path-exclude=/usr/share/doc/*',
    'path-include=/usr/share/doc/*/copyright',
    'path-exclude=/usr/share/locale/*',
    'path-include=/usr/share/locale/locale.alias',
  ],
  /** Extra locales generated besides the built-in C.UTF-8. */
  locales: ['en_US.UTF-8 UTF-8'],
  user: { name: 'app', uid: 1000, home: '/app' },
  /** Commands on PATH, linked into /usr/local/bin: corepack's yarn/pnpm shims download the chosen version on first use. */
  links: {
    npm: 'npm/bin/npm-cli.js',
    npx: 'npm/bin/npx-cli.js',
    corepack: 'corepack/dist/corepack.js',
    yarn: 'corepack/dist/yarn.js',
    yarnpkg: 'corepack/dist/yarnpkg.js',
    pnpm: 'corepack/dist/pnpm.js',
    pnpx: 'corepack/dist/pnpx.js',
  },
  env: {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    LANG: 'C.UTF-8',
    // corepack fetches yarn (classic and berry) and pnpm from the npm registry only (COREPACK_NPM_REGISTRY,
    // not repo.yarnpkg.com), without asking, and without a `packageManager` field uses the versions it
    // ships with instead of looking up the latest.
    COREPACK_ENABLE_DOWNLOAD_PROMPT: '0',
    COREPACK_DEFAULT_TO_LATEST: '0',
  },
} as const;

export const STACK_IMAGE_DEFAULTS = Object.freeze({
  /** The stack image's repository; `<repo>:latest` is tagged on every build. */
  repo: RECIPE.repo,
  /** What the platform uses when it is there. */
  latest: `${RECIPE.repo}:latest`,
  /** The node binary copied into the image. */
  nodePath: process.execPath,
  /** One-line apt sources list. */
  sourcesList: '/etc/apt/sources.list',
  /** Directory of `*.list` (one-line) and `*.sources` (deb822) files. */
  sourcesDir: '/etc/apt/sources.list.d',
  /** Names the release (`VERSION_ID`, `VERSION_CODENAME`). */
  osRelease: '/etc/os-release',
  /** The registry corepack fetches yarn and pnpm from (`COREPACK_NPM_REGISTRY`). */
  npmRegistry: 'https://registry.npmjs.org',
  /** The mmdebstrap binary. */
  mmdebstrap: 'mmdebstrap',
});

export interface StackImageOptions {
  /** Docker client. Default `new Dockerode()`. */
  docker?: Dockerode;
  /** Image name with tag. Default `flynn-ts/stack:<stack>-<recipe hash>`. */
  name?: string;
  /** The stack's name (`$STACK` in the image). Default `flynn-ts-<VERSION_ID of os-release>`, e.g. `flynn-ts-12`. */
  stack?: string;
  /**
   * Debian packages added to the recipe's, e.g. `['golang-go']` for Go apps (about 450 MB, so not in
   * the default stack). Such a variant has a repository of its own, `flynn-ts/stack-<packages>`
   * (`flynn-ts/stack-golang-go:<stack>-<hash>` and `:latest`), so `flynn-ts/stack:latest` stays the
   * default stack; run apps on it with the `image` option. Default none.
   */
  extraPackages?: string[];
  /**
   * One-line apt entries (`deb URI SUITE COMPONENT...`) to build from. Default: the Debian entries
   * (the release, `-updates`, `-security`) of this machine's apt sources.
   */
  sources?: string[];
  /** Default {@link STACK_IMAGE_DEFAULTS}.nodePath. */
  nodePath?: string;
  /** Directory holding the host's global `npm` and `corepack` packages. Default `<node prefix>/lib/node_modules`. */
  nodeModulesDir?: string;
  /** Default {@link STACK_IMAGE_DEFAULTS}.npmRegistry. */
  npmRegistry?: string;
  /** Default {@link STACK_IMAGE_DEFAULTS}.sourcesList. */
  sourcesList?: string;
  /** Default {@link STACK_IMAGE_DEFAULTS}.sourcesDir. */
  sourcesDir?: string;
  /** Default {@link STACK_IMAGE_DEFAULTS}.osRelease. */
  osRelease?: string;
  /** Default {@link STACK_IMAGE_DEFAULTS}.mmdebstrap. */
  mmdebstrap?: string;
  /** Called with one human-readable line per build step. */
  onProgress?: (line: string) => void;
}

export interface StackImage {
  /** The name the image was built or found under. */
  name: string;
  /** `sha256:...` image id. */
  id: string;
  sizeBytes: number;
  /** The stack's name, `$STACK` in builds and jobs. */
  stack: string;
}

/** What a build is made from, resolved once from the host. */
interface Inputs {
  stack: string;
  extraPackages: string[];
  suite: string;
  sources: string[];
  nodePath: string;
  nodeVersion: string;
  nodeModulesDir: string;
  /** The node install's C headers (`<prefix>/include/node`): node-gyp compiles native modules against them. */
  nodeIncludeDir: string;
  npmVersion: string;
  corepackVersion: string;
  npmRegistry: string;
  name: string;
}

async function resolveInputs(opts: StackImageOptions): Promise<Inputs> {
  const release = parseOsRelease(await readFile(opts.osRelease ?? STACK_IMAGE_DEFAULTS.osRelease, 'utf8').catch(() => ''));
  const sources = opts.sources ?? (await hostDebianSources(opts, release.codename));
  if (sources.length === 0) throw new RuntimeImageError(HostErrorCodes.IMAGE_BUILD, 'sources is empty: give at least one "deb URI SUITE COMPONENT..." line');
  const suite = sourceSuite(sources[0]!);
  const stack = opts.stack ?? (release.versionId ? `flynn-ts-${release.versionId.split('.')[0]}` : `flynn-ts-${suite}`);
  const nodePath = await realpath(opts.nodePath ?? STACK_IMAGE_DEFAULTS.nodePath).catch(() => {
    throw new RuntimeImageError(HostErrorCodes.IMAGE_BUILD, `node not found at ${opts.nodePath ?? STACK_IMAGE_DEFAULTS.nodePath}`);
  });
  const nodeModulesDir = opts.nodeModulesDir ?? path.resolve(path.dirname(opts.nodePath ?? STACK_IMAGE_DEFAULTS.nodePath), '..', 'lib', 'node_modules');
  const nodeIncludeDir = path.resolve(path.dirname(opts.nodePath ?? STACK_IMAGE_DEFAULTS.nodePath), '..', 'include', 'node');
  if (!(await stat(path.join(nodeIncludeDir, 'node.h')).catch(() => undefined))) {
    throw new RuntimeImageError(HostErrorCodes.IMAGE_BUILD, `node's headers not found at ${nodeIncludeDir}: native modules could not be built on the stack (node-gyp would download them from a host builds may not reach)`);
  }
  const packageVersion = async (pkg: string) => {
    const file = path.join(nodeModulesDir, pkg, 'package.json');
    const text = await readFile(file, 'utf8').catch(() => {
      throw new RuntimeImageError(HostErrorCodes.IMAGE_BUILD, `${pkg} not found at ${path.dirname(file)} (the node install's global packages; set nodeModulesDir)`);
    });
    return (JSON.parse(text) as { version: string }).version;
  };
  const nodeVersion = (await execFileAsync(nodePath, ['--version'])).stdout.trim().replace(/^v/, '');
  const extraPackages = [...new Set(opts.extraPackages ?? [])].sort();
  const bad = extraPackages.find((p) => !/^[a-z0-9][a-z0-9+.-]+$/.test(p));
  if (bad !== undefined) throw new RuntimeImageError(HostErrorCodes.IMAGE_BUILD, `not a Debian package name: ${JSON.stringify(bad)}`);
  const inputs = {
    stack,
    extraPackages,
    suite,
    sources,
    nodePath,
    nodeVersion,
    nodeModulesDir,
    nodeIncludeDir,
    npmVersion: await packageVersion('npm'),
    corepackVersion: await packageVersion('corepack'),
    npmRegistry: opts.npmRegistry ?? STACK_IMAGE_DEFAULTS.npmRegistry,
  };
  const { nodePath: _p, nodeModulesDir: _d, nodeIncludeDir: _i, extraPackages: _e, ...rest } = inputs;
  // Extra packages join the hash only when there are some: the default stack keeps its tag.
  const content = extraPackages.length > 0 ? { ...rest, extraPackages } : rest;
  const hash = createHash('sha256').update(JSON.stringify({ RECIPE, content })).digest('hex').slice(0, 10);
  const repo = extraPackages.length > 0 ? `${RECIPE.repo}-${extraPackages.map((p) => p.replace(/[^a-z0-9]+/g, '-')).join('-')}` : RECIPE.repo;
  return { ...inputs, name: opts.name ?? `${repo}:${stack}-${hash}` };
}

function sourceSuite(entry: string): string {
  const suite = entry.split(/\s+/)[2];
  if (!suite) throw new RuntimeImageError(HostErrorCodes.IMAGE_BUILD, `not an apt source line: ${JSON.stringify(entry)} (want "deb URI SUITE COMPONENT...")`);
  return suite.replace(/-(updates|security)$/, '');
}

/** This machine's Debian apt entries as one-line `deb` lines, for mmdebstrap. */
async function hostDebianSources(opts: StackImageOptions, codename: string | undefined): Promise<string[]> {
  const listFile = opts.sourcesList ?? STACK_IMAGE_DEFAULTS.sourcesList;
  const dir = opts.sourcesDir ?? STACK_IMAGE_DEFAULTS.sourcesDir;
  const all = parseOneLineSources(await readFile(listFile, 'utf8').catch(() => ''));
  for (const file of (await readdir(dir).catch(() => [])).sort()) {
    if (file.endsWith('.list')) all.push(...parseOneLineSources(await readFile(path.join(dir, file), 'utf8')));
    else if (file.endsWith('.sources')) all.push(...parseDeb822Sources(await readFile(path.join(dir, file), 'utf8')));
  }
  // Without a codename in os-release, the release is the suite of the first binary entry.
  const release = codename ?? all.find((s) => s.type === 'deb')?.suite.replace(/-(updates|security)$/, '');
  const picked = release ? debianSources(all, release) : [];
  if (picked.length === 0) {
    throw new RuntimeImageError(HostErrorCodes.IMAGE_BUILD, `no Debian apt source for ${release ?? 'this release'} in ${listFile} or ${dir}/*.{list,sources}: pass sources`);
  }
  return picked.map((s) => `deb ${s.uri} ${s.suite} ${s.components.join(' ')}`);
}

/** `'...'` for sh. */
function shQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** The mmdebstrap command line: a minbase root filesystem as a tar on stdout. */
function mmdebstrapArgs(inputs: Inputs): string[] {
  const { user } = RECIPE;
  const modules = `${NODE_PREFIX}/lib/node_modules`;
  const hooks = [
    `chroot "$1" useradd --uid ${user.uid} --user-group --home-dir ${user.home} --create-home --shell /bin/bash ${user.name}`,
    `printf '%s\\n' ${RECIPE.locales.map(shQuote).join(' ')} > "$1/etc/locale.gen" && chroot "$1" locale-gen`,
    `install -D -m 755 ${shQuote(inputs.nodePath)} "$1${NODE_PREFIX}/bin/node"`,
    `mkdir -p "$1${modules}" && cp -a ${shQuote(path.join(inputs.nodeModulesDir, 'npm'))} ${shQuote(path.join(inputs.nodeModulesDir, 'corepack'))} "$1${modules}/"`,
    // node-gyp finds the headers beside the running node (<prefix>/include/node) instead of downloading them.
    `mkdir -p "$1${NODE_PREFIX}/include" && cp -a ${shQuote(inputs.nodeIncludeDir)} "$1${NODE_PREFIX}/include/"`,
    ...Object.entries(RECIPE.links).map(([name, target]) => `ln -sf ../lib/node_modules/${target} "$1${NODE_PREFIX}/bin/${name}"`),
    // Fails the build here (not at the first push) when node misses a library in the image.
    `chroot "$1" ${NODE_PREFIX}/bin/node ${modules}/npm/bin/npm-cli.js --version >/dev/null`,
  ];
  return [
    `--variant=${RECIPE.variant}`,
    '--format=tar',
    `--include=${[...RECIPE.packages, ...inputs.extraPackages].join(',')}`,
    ...RECIPE.dpkgOptions.map((o) => `--dpkgopt=${o}`),
    ...hooks.map((h) => `--customize-hook=${h}`),
    inputs.suite,
    '-',
    ...inputs.sources,
  ];
}

function imageChanges(inputs: Inputs): string[] {
  const env: Record<string, string> = { ...RECIPE.env, STACK: inputs.stack, COREPACK_NPM_REGISTRY: inputs.npmRegistry };
  return [
    ...Object.entries(env).map(([k, v]) => `ENV ${k}=${v}`),
    `WORKDIR ${RECIPE.user.home}`,
    'CMD ["bash"]',
    'LABEL io.flynn-ts.image=stack',
    `LABEL io.flynn-ts.stack=${inputs.stack}`,
    `LABEL io.flynn-ts.node-version=${inputs.nodeVersion}`,
  ];
}

/** The stack's name of an image: its `STACK` env, if it sets one. */
export function stackOf(info: Dockerode.ImageInspectInfo): string | undefined {
  return imageEnv(info, 'STACK');
}

/**
 * The stack image under `name` (default `flynn-ts/stack:latest`) if the engine has it, named by
 * its versioned tag when it has one: what runs in it then does not change with a later retag.
 */
export async function findStackImage(docker: Dockerode, name: string = STACK_IMAGE_DEFAULTS.latest): Promise<StackImage | undefined> {
  const info = await inspectImage(docker, name);
  if (!info) return undefined;
  const { repo } = splitName(name);
  const versioned = (info.RepoTags ?? []).find((t) => t.startsWith(`${repo}:`) && !t.endsWith(':latest'));
  return { name: versioned ?? name, id: info.Id, sizeBytes: info.Size, stack: stackOf(info) ?? 'unknown' };
}

/** Return the stack image for this host's sources and node, building it only when it is missing. */
export async function ensureStackImage(opts: StackImageOptions = {}): Promise<StackImage> {
  const docker = opts.docker ?? new Dockerode();
  const inputs = await resolveInputs(opts);
  const found = await inspectImage(docker, inputs.name);
  if (found) {
    opts.onProgress?.(`${inputs.name} already present (${found.Id.slice(0, 19)}), not rebuilt`);
    return { name: inputs.name, id: found.Id, sizeBytes: found.Size, stack: inputs.stack };
  }
  return build(docker, inputs, opts);
}

/** Build the stack image (always) and tag it `name` and `flynn-ts/stack:latest`. Needs root or working user namespaces (mmdebstrap). */
export async function buildStackImage(opts: StackImageOptions = {}): Promise<StackImage> {
  const docker = opts.docker ?? new Dockerode();
  return build(docker, await resolveInputs(opts), opts);
}

async function build(docker: Dockerode, inputs: Inputs, opts: StackImageOptions): Promise<StackImage> {
  const progress = opts.onProgress ?? (() => {});
  const mmdebstrap = opts.mmdebstrap ?? STACK_IMAGE_DEFAULTS.mmdebstrap;
  await checkTool(mmdebstrap);
  const { repo, tag } = splitName(inputs.name);
  const previous = await inspectImage(docker, inputs.name);
  progress(`stack ${inputs.stack}: ${inputs.suite} from ${inputs.sources.length} apt source(s) (${inputs.sources.map((s) => s.split(' ').slice(1, 3).join(' ')).join(', ')}), node ${inputs.nodeVersion}, npm ${inputs.npmVersion}, corepack ${inputs.corepackVersion}`);
  progress(`running mmdebstrap into docker import as ${inputs.name} (a minute or more the first time)`);

  const child = spawn(mmdebstrap, mmdebstrapArgs(inputs), { stdio: ['ignore', 'pipe', 'pipe'] });
  const tail: string[] = [];
  let partial = '';
  child.stderr.on('data', (d: Buffer) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines.filter(Boolean)) {
      tail.push(line);
      if (tail.length > 20) tail.shift();
      progress(`mmdebstrap: ${line}`);
    }
  });
  const exited = new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve(code ?? -1));
  });
  const abort = new AbortController();
  const imported = importTar(docker, child.stdout, { repo, tag, changes: imageChanges(inputs), abortSignal: abort.signal });
  // The engine stopped reading: mmdebstrap must stop writing.
  imported.catch(() => child.kill('SIGTERM'));
  const [code, id] = await Promise.allSettled([exited, imported]);
  if (code.status === 'rejected' || code.value !== 0) {
    abort.abort();
    const why = code.status === 'rejected' ? (code.reason as Error).message : `exit ${code.value}: ${tail.filter((l) => l.startsWith('E:')).join('; ') || tail.slice(-3).join('; ')}`;
    throw new RuntimeImageError(HostErrorCodes.IMAGE_BUILD, `mmdebstrap failed (${why})`, code.status === 'rejected' ? { cause: code.reason } : {});
  }
  if (id.status === 'rejected') throw id.reason;
  const built = await finishImport(docker, id.value, repo, previous?.Id);
  progress(`built ${inputs.name} (${built.Id.slice(0, 19)}, ${(built.Size / 1e6).toFixed(1)} MB, STACK=${inputs.stack}), also tagged ${repo}:latest`);
  return { name: inputs.name, id: built.Id, sizeBytes: built.Size, stack: inputs.stack };
}

async function checkTool(file: string): Promise<void> {
  try {
    await execFileAsync(file, ['--version']);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new RuntimeImageError('FLYNN_ERR_HOST_IMAGE_TOOL_MISSING', `${file} is not installed: the stack image is built with it (apt-get install mmdebstrap)`, { cause: err });
    }
    throw new RuntimeImageError(HostErrorCodes.IMAGE_BUILD, `${file} --version failed: ${(err as Error).message}`, { cause: err });
  }
}
