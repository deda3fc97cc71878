import { execFile } from 'node:child_process';
import { existsSync, realpathSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { SlugInputError } from './errors.js';

const execFileAsync = promisify(execFile);

/** Where a buildpack comes from, once a reference has been read. */
export type BuildpackRef =
  | { kind: 'bundled'; name: string }
  | { kind: 'local'; path: string }
  | { kind: 'git'; url: string; ref?: string };

/**
 * The bundled `buildpacks/` directory of this package: found by walking up from this file to the
 * first directory holding `buildpacks/ORDER` (works from `src/` and from `dist/`).
 */
export function bundledBuildpacksDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'buildpacks', 'ORDER'))) return path.join(dir, 'buildpacks');
    const up = path.dirname(dir);
    if (up === dir) throw new SlugInputError('cannot find the bundled buildpacks directory; pass buildpacksDir');
    dir = up;
  }
}

/** Names in an `ORDER` file: one per line, `#` comments and blank lines ignored. */
export async function readOrder(buildpacksDir: string): Promise<string[]> {
  const text = await readFile(path.join(buildpacksDir, 'ORDER'), 'utf8');
  return text.split('\n').map((l) => l.replace(/#.*/, '').trim()).filter(Boolean);
}

const GIT_URL = /^(https?:\/\/|git:\/\/|ssh:\/\/|file:\/\/|[\w.-]+@[\w.-]+:)/;

/**
 * Read one buildpack reference, as `BUILDPACK_URL` or a `.buildpacks` line holds it: a bundled
 * buildpack's name (`static`), an absolute local directory, or a git URL with an optional `#ref`.
 */
export function parseBuildpackRef(input: string, buildpacksDir: string): BuildpackRef {
  const ref = input.trim();
  if (ref === '') throw new SlugInputError('empty buildpack reference', { field: 'BUILDPACK_URL' });
  if (/^[a-z0-9][a-z0-9._-]*$/i.test(ref) && !ref.includes('..')) {
    const dir = path.join(buildpacksDir, ref);
    if (!existsSync(path.join(dir, 'bin'))) throw new SlugInputError(`no bundled buildpack named ${ref}`, { field: 'BUILDPACK_URL' });
    return { kind: 'bundled', name: ref };
  }
  if (GIT_URL.test(ref)) {
    const hash = ref.lastIndexOf('#');
    const url = hash < 0 ? ref : ref.slice(0, hash);
    const gitRef = hash < 0 ? undefined : ref.slice(hash + 1);
    if (gitRef !== undefined && !/^[\w./-]+$/.test(gitRef)) throw new SlugInputError(`invalid git ref ${JSON.stringify(gitRef)} in ${ref}`, { field: 'BUILDPACK_URL' });
    return gitRef === undefined ? { kind: 'git', url } : { kind: 'git', url, ref: gitRef };
  }
  if (path.isAbsolute(ref)) {
    const st = statSync(ref, { throwIfNoEntry: false });
    if (!st?.isDirectory()) throw new SlugInputError(`buildpack directory ${ref} does not exist`, { field: 'BUILDPACK_URL' });
    return { kind: 'local', path: path.normalize(ref) };
  }
  throw new SlugInputError(`cannot read buildpack reference ${JSON.stringify(ref)}: expected a bundled name, an absolute path or a git URL`, { field: 'BUILDPACK_URL' });
}

/** Clone a git buildpack into `dir` with the git CLI, checking out `ref` when given. */
export async function cloneBuildpack(ref: { url: string; ref?: string }, dir: string, signal?: AbortSignal): Promise<void> {
  const git = async (args: string[]) => {
    try {
      await execFileAsync('git', args, { signal, env: { ...process.env, GIT_TERMINAL_PROMPT: '0' }, maxBuffer: 4 * 1024 * 1024 });
    } catch (err) {
      const stderr = String((err as { stderr?: string }).stderr ?? '').trim().split('\n').slice(-2).join(' ');
      throw new SlugInputError(`git ${args[0]} of buildpack ${ref.url} failed: ${stderr || (err as Error).message}`, { field: 'BUILDPACK_URL', cause: err });
    }
  };
  await git(['clone', '--quiet', '--', ref.url, dir]);
  if (ref.ref !== undefined) await git(['-C', dir, 'checkout', '--quiet', ref.ref, '--']);
}

/** The host's npm package directory (holding npm's package.json), from `npm` on PATH; undefined without one. */
export function findNpmDir(pathEnv = process.env.PATH ?? ''): string | undefined {
  for (const dir of pathEnv.split(path.delimiter)) {
    if (!dir) continue;
    const npm = path.join(dir, 'npm');
    if (!existsSync(npm)) continue;
    try {
      // `npm` is a symlink to <npm dir>/bin/npm-cli.js.
      const real = realpathSync(npm);
      const pkgDir = path.dirname(path.dirname(real));
      if (existsSync(path.join(pkgDir, 'bin', 'npm-cli.js'))) return pkgDir;
    } catch {
      /* try the next one */
    }
  }
  return undefined;
}
