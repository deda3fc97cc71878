// The bundled buildpacks (buildpacks/), run directly as the slug builder would run them: bin/detect,
// bin/compile BUILD_DIR CACHE_DIR ENV_DIR and bin/release on copies of test/fixtures/apps.
// Compile runs twice over: with the host's /bin/sh and its tools, and with busybox sh and a PATH
// holding only busybox applets and node, which is what the build image offers.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { appendFile, cp, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { freePort } from '../../src/host/testing/jobs.js';
import { needDocker } from '../support/services.js';

const REPO = path.resolve(import.meta.dirname, '../..');
const PACKS = path.join(REPO, 'buildpacks');
const FIXTURES = path.join(REPO, 'test/fixtures/apps');
const RESTORE_LINE = '-----> Restoring node_modules from cache (unchanged package-lock.json)';
const SECRET = 's3cr3t-config-value-7f3a9';

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout and stderr interleaved as they arrived, as a pusher would see them. */
  output: string;
}

let work: string;
let busybox: string;
let imageBin: string;
let npmCli: string;
const children: ChildProcess[] = [];

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, name);
    if (dir && existsSync(candidate)) return candidate;
  }
  return undefined;
}

function run(argv: string[], opts: { env: Record<string, string>; cwd?: string }): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const [cmd, ...args] = argv;
    const child = spawn(cmd!, args, { env: opts.env, cwd: opts.cwd ?? work, stdio: ['ignore', 'pipe', 'pipe'] });
    const result: RunResult = { code: null, stdout: '', stderr: '', output: '' };
    child.stdout.on('data', (d: Buffer) => { result.stdout += d; result.output += d; });
    child.stderr.on('data', (d: Buffer) => { result.stderr += d; result.output += d; });
    child.on('error', reject);
    child.on('close', (code) => { result.code = code; resolve(result); });
  });
}

let tmpCount = 0;
async function tempDir(label: string): Promise<string> {
  const dir = path.join(work, `${label}-${++tmpCount}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

/** A fresh copy of a fixture app, as the slug builder unpacks a push into a new BUILD_DIR. */
async function copyFixture(name: string): Promise<string> {
  const dir = path.join(await tempDir('build'), name);
  await cp(path.join(FIXTURES, name), dir, { recursive: true });
  return dir;
}

async function envDir(vars: Record<string, string>): Promise<string> {
  const dir = await tempDir('env');
  for (const [name, value] of Object.entries(vars)) await writeFile(path.join(dir, name), value);
  return dir;
}

/**
 * An "npm" that records each call, then fails (to prove a build did not need npm) or, given the
 * real npm-cli.js, runs it (to see which npm commands a build ran).
 */
async function fakeNpm(realCli?: string): Promise<{ cli: string; calls: () => Promise<string> }> {
  const dir = await tempDir('fake-npm');
  const marker = path.join(dir, 'calls.log');
  const cli = path.join(dir, 'npm-cli.cjs');
  const then = realCli ? `require(${JSON.stringify(realCli)});` : 'process.exit(1);';
  await writeFile(cli, `require('node:fs').appendFileSync(${JSON.stringify(marker)}, process.argv.slice(2).join(' ') + '\\n');\n${then}\n`);
  return { cli, calls: async () => (existsSync(marker) ? readFile(marker, 'utf8') : '') };
}

async function allFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
}

async function filesContaining(dir: string, needle: string): Promise<string[]> {
  const hits: string[] = [];
  for (const file of await allFiles(dir)) {
    if ((await readFile(file)).includes(needle)) hits.push(path.relative(dir, file));
  }
  return hits;
}

interface RawResponse { status: number; headers: Record<string, string | string[] | undefined>; body: string }

/** An HTTP request with the path sent exactly as given (fetch would normalise "/../"). */
function rawRequest(port: number, rawPath: string, method = 'GET'): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: rawPath, method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Starts a web process on 127.0.0.1 and waits until it answers. Killed by pid in afterAll. */
async function startWeb(argv: string[], cwd: string, env: Record<string, string> = {}): Promise<number> {
  const port = await freePort('127.0.0.1');
  const [cmd, ...args] = argv;
  const child = spawn(cmd!, args, {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOME: cwd, PORT: String(port), HOST: '127.0.0.1', ...env },
    stdio: 'ignore',
  });
  children.push(child);
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${argv.join(' ')} exited with ${child.exitCode}`);
    try {
      await rawRequest(port, '/');
      return port;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`${argv.join(' ')} did not answer on port ${port}`);
}

async function release(pack: string, buildDir: string): Promise<unknown> {
  const result = await run(['/bin/sh', path.join(PACKS, pack, 'bin/release'), buildDir], { env: { PATH: process.env.PATH ?? '' } });
  expect(result.code, result.output).toBe(0);
  return parseYaml(result.stdout);
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'flynn-buildpacks-'));
  const bb = findOnPath('busybox');
  if (!bb) throw new Error('busybox is needed: it is the build image\'s only toolset (apt-get install busybox-static)');
  busybox = realpathSync(bb);
  // The build image, as far as PATH goes: busybox applets and node, no npm, no GNU tools.
  imageBin = path.join(work, 'image-bin');
  await mkdir(imageBin);
  const install = await run([busybox, '--install', '-s', imageBin], { env: {} });
  expect(install.code, install.output).toBe(0);
  await symlink(process.execPath, path.join(imageBin, 'node'));

  // npm as the host has it: <prefix>/lib/node_modules/npm next to <prefix>/bin/node.
  const besideNode = path.resolve(path.dirname(process.execPath), '../lib/node_modules/npm/bin/npm-cli.js');
  const onPath = findOnPath('npm');
  npmCli = existsSync(besideNode) ? besideNode : onPath ? realpathSync(onPath) : '';
  if (!npmCli.endsWith('npm-cli.js')) throw new Error('cannot find the host npm\'s npm-cli.js');
});

afterAll(async () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
  }
  if (work) await rm(work, { recursive: true, force: true });
});

const SHELLS = [
  { name: 'the host /bin/sh and tools', argv: () => ['/bin/sh'], path: () => process.env.PATH ?? '' },
  { name: 'busybox sh with only busybox and node on PATH', argv: () => [busybox, 'sh'], path: () => imageBin },
];

describe.each(SHELLS)('buildpack scripts under $name', (shell) => {
  const script = (pack: string, name: string) => [...shell.argv(), path.join(PACKS, pack, 'bin', name)];
  const baseEnv = () => ({ PATH: shell.path(), HOME: path.join(work, 'no-home') });

  async function detect(dir: string): Promise<{ pack: string; name: string } | undefined> {
    const order = (await readFile(path.join(PACKS, 'ORDER'), 'utf8'))
      .split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    for (const pack of order) {
      const result = await run([...script(pack, 'detect'), dir], { env: baseEnv() });
      if (result.code === 0) return { pack, name: result.stdout.trim() };
      expect(result.code).toBe(1);
    }
    return undefined;
  }

  function compile(pack: string, buildDir: string, cacheDir: string, envDirPath: string, env: Record<string, string> = {}) {
    return run([...script(pack, 'compile'), buildDir, cacheDir, envDirPath], { env: { ...baseEnv(), ...env } });
  }

  it('detect picks the right buildpack for each fixture app, in the default order', async () => {
    const expected: Record<string, { pack: string; name: string }> = {
      'node-hello': { pack: 'nodejs', name: 'Node.js' },
      'node-dep': { pack: 'nodejs', name: 'Node.js' },
      'build-fails': { pack: 'nodejs', name: 'Node.js' },
      'static-site': { pack: 'static', name: 'Static HTML' },
      'procfile-two': { pack: 'procfile', name: 'Procfile' },
    };
    for (const [app, want] of Object.entries(expected)) {
      expect(await detect(path.join(FIXTURES, app)), app).toEqual(want);
    }
    expect(await detect(await tempDir('empty'))).toBeUndefined();
  });

  it('builds an app without dependencies and never calls npm', async () => {
    const build = await copyFixture('node-hello');
    const npm = await fakeNpm();
    const result = await compile('nodejs', build, await tempDir('cache'), await envDir({}), { FLYNN_NPM_CLI: npm.cli });
    expect(result.code, result.output).toBe(0);
    expect(result.stdout).toContain('-----> Installing dependencies');
    expect(result.stdout).toContain('package.json lists no dependencies');
    expect(result.stdout).toContain('engines.node ">=18" includes');
    expect(await npm.calls()).toBe('');
    expect(existsSync(path.join(build, '.profile.d/nodejs.sh'))).toBe(true);
  });

  it('installs with npm ci, then restores node_modules from the cache and runs npm only for the build script', async () => {
    const cache = await tempDir('cache');
    const env = await envDir({});

    const first = await compile('nodejs', await copyFixture('node-dep'), cache, env, { FLYNN_NPM_CLI: npmCli });
    expect(first.code, first.output).toBe(0);
    expect(first.stdout).toContain('-----> Installing dependencies');
    expect(first.stdout).toContain('npm ci (from package-lock.json)');
    expect(first.stdout).toContain('-----> Caching node_modules');
    expect(first.stdout).not.toContain('Restoring node_modules');
    expect(existsSync(path.join(cache, 'nodejs/modules/node_modules/tiny-greet/package.json'))).toBe(true);
    expect(existsSync(path.join(cache, 'nodejs/key'))).toBe(true);
    expect(existsSync(path.join(cache, 'nodejs/npm-cache'))).toBe(true);

    // A new push of the same app: a fresh BUILD_DIR, the same CACHE_DIR, and npm runs only the build script.
    const build = await copyFixture('node-dep');
    const npm = await fakeNpm(npmCli);
    const second = await compile('nodejs', build, cache, env, { FLYNN_NPM_CLI: npm.cli });
    expect(second.code, second.output).toBe(0);
    expect(second.stdout.split('\n')).toContain(RESTORE_LINE);
    expect(second.stdout).not.toContain('Installing dependencies');
    expect((await npm.calls()).split('\n').filter(Boolean).map((c) => c.split(' ').slice(0, 2).join(' '))).toEqual(['run build']);
    const info = JSON.parse(await readFile(path.join(build, 'build-info.json'), 'utf8'));
    expect(info.greeting).toBe('Hello from the build');
  });

  it('reinstalls offline from the npm cache when package.json changes', async () => {
    const cache = await tempDir('cache');
    const env = await envDir({});
    const first = await compile('nodejs', await copyFixture('node-dep'), cache, env, { FLYNN_NPM_CLI: npmCli });
    expect(first.code, first.output).toBe(0);

    const build = await copyFixture('node-dep');
    const pkgFile = path.join(build, 'package.json');
    const pkg = JSON.parse(await readFile(pkgFile, 'utf8'));
    await writeFile(pkgFile, JSON.stringify({ ...pkg, description: 'changed' }, null, 2));
    const second = await compile('nodejs', build, cache, env, { FLYNN_NPM_CLI: npmCli, FLYNN_NPM_OFFLINE: '1' });
    expect(second.code, second.output).toBe(0);
    expect(second.stdout).not.toContain('Restoring node_modules');
    expect(second.stdout).toContain('npm ci (from package-lock.json)');
    expect(existsSync(path.join(build, 'node_modules/tiny-greet/index.js'))).toBe(true);
  });

  it('installs devDependencies for the build script, then prunes them from the slug but not the cache', async () => {
    const build = await copyFixture('node-dep');
    const pkgFile = path.join(build, 'package.json');
    const { dependencies, ...pkg } = JSON.parse(await readFile(pkgFile, 'utf8'));
    await writeFile(pkgFile, JSON.stringify({ ...pkg, devDependencies: dependencies }, null, 2));
    const lock = await run([process.execPath, npmCli, 'install', '--package-lock-only', '--offline', '--no-audit', '--no-fund'],
      { env: { PATH: process.env.PATH ?? '', HOME: path.join(work, 'no-home') }, cwd: build });
    expect(lock.code, lock.output).toBe(0);

    const cache = await tempDir('cache');
    const result = await compile('nodejs', build, cache, await envDir({}), { FLYNN_NPM_CLI: npmCli });
    expect(result.code, result.output).toBe(0);
    expect(JSON.parse(await readFile(path.join(build, 'build-info.json'), 'utf8')).greeting).toBe('Hello from the build');
    expect(result.stdout).toContain('-----> Pruning devDependencies');
    expect(existsSync(path.join(build, 'node_modules/tiny-greet'))).toBe(false);
    expect(existsSync(path.join(cache, 'nodejs/modules/node_modules/tiny-greet/index.js'))).toBe(true);
  });

  it('shows config vars from ENV_DIR to the build but never writes them into the slug', async () => {
    const build = await copyFixture('node-dep');
    const cache = await tempDir('cache');
    const result = await compile('nodejs', build, cache, await envDir({ API_TOKEN: SECRET }), { FLYNN_NPM_CLI: npmCli });
    expect(result.code, result.output).toBe(0);
    expect(result.stdout).toContain('config var API_TOKEN is visible');
    expect(JSON.parse(await readFile(path.join(build, 'build-info.json'), 'utf8')).sawSecret).toBe(true);
    expect(await filesContaining(build, SECRET)).toEqual([]);
    expect(await filesContaining(cache, SECRET)).toEqual([]);
  });

  it('fails with a clear message when the app has dependencies and there is no npm', async () => {
    const build = await copyFixture('node-dep');
    // busybox and node only, whatever the shell: the image without npm mounted.
    const result = await run([...script('nodejs', 'compile'), build, await tempDir('cache'), await envDir({})],
      { env: { PATH: imageBin, HOME: path.join(work, 'no-home') } });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('no npm in the build container');
    expect(result.stderr).toContain('FLYNN_NPM_CLI');

    const missing = await compile('nodejs', build, await tempDir('cache'), await envDir({}), { FLYNN_NPM_CLI: '/nowhere/npm-cli.js' });
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('FLYNN_NPM_CLI is /nowhere/npm-cli.js, but there is no such file');
  });

  it('fails the build when the heroku-postbuild step fails, saying which step', async () => {
    const result = await compile('nodejs', await copyFixture('build-fails'), await tempDir('cache'), await envDir({}));
    expect(result.code).not.toBe(0);
    expect(result.stdout).toContain('       error: src/main.css: no such file');
    expect(result.stderr).toContain('Build failed: the "heroku-postbuild" script in package.json exited with status 3');
  });

  it('warns when engines.node excludes the image\'s node, and builds with it anyway', async () => {
    const build = await copyFixture('node-hello');
    const pkgFile = path.join(build, 'package.json');
    const pkg = JSON.parse(await readFile(pkgFile, 'utf8'));
    await writeFile(pkgFile, JSON.stringify({ ...pkg, engines: { node: '0.10.x' } }));
    const result = await compile('nodejs', build, await tempDir('cache'), await envDir({}));
    expect(result.code, result.output).toBe(0);
    expect(result.stdout).toContain(`Warning: package.json asks for node "0.10.x" (engines.node); building and running with ${process.version} anyway`);
  });

  it('fails at once, with a strict FLYNN_STRICT_ENGINES, when engines.node excludes the stack\'s node', async () => {
    const build = await copyFixture('node-hello');
    const pkgFile = path.join(build, 'package.json');
    await writeFile(pkgFile, JSON.stringify({ ...JSON.parse(await readFile(pkgFile, 'utf8')), engines: { node: '>=22 <23' } }));
    const result = await compile('nodejs', build, await tempDir('cache'), await envDir({ FLYNN_STRICT_ENGINES: 'true' }));
    expect(result.code).not.toBe(0);
    expect(result.stderr.trimEnd().split('\n')).toEqual([
      ` !     Build failed: package.json asks for node ">=22 <23" (engines.node) and this stack has only ${process.version} (FLYNN_STRICT_ENGINES is set)`,
    ]);
  });

  it('refuses package manager metadata that disagrees, in one line', async () => {
    const twoLocks = await copyFixture('yarn-classic');
    await cp(path.join(FIXTURES, 'express-lock/package-lock.json'), path.join(twoLocks, 'package-lock.json'));
    const both = await compile('nodejs', twoLocks, await tempDir('cache'), await envDir({}));
    expect(both.code).not.toBe(0);
    expect(both.stderr).toContain('The app has lock files of two package managers, package-lock.json (npm) and yarn.lock (yarn): delete the one you do not use');

    const declared = await copyFixture('yarn-classic');
    const pkgFile = path.join(declared, 'package.json');
    await writeFile(pkgFile, JSON.stringify({ ...JSON.parse(await readFile(pkgFile, 'utf8')), packageManager: 'pnpm@10.28.1' }));
    const other = await compile('nodejs', declared, await tempDir('cache'), await envDir({}));
    expect(other.code).not.toBe(0);
    expect(other.stderr).toContain("package.json's packageManager says pnpm@10.28.1 but the lock file is yarn.lock (yarn): use one package manager");
  });

  it('offline, a dependency npm does not have fails with the no-network message', async () => {
    const result = await compile('nodejs', await copyFixture('npm-fails'), await tempDir('cache'), await envDir({}), { FLYNN_NPM_CLI: npmCli, FLYNN_NPM_OFFLINE: '1' });
    expect(result.code).not.toBe(0);
    expect(result.output).toContain('npm error code ENOTCACHED');
    expect(result.stderr).toMatch(/^ ! {5}Build failed: npm install exited with status 1 \(see its output above\)\. Builds here have no network access/);
  });

  it('runs package.json scripts exactly as written, quotes and $ included', async () => {
    const build = await copyFixture('node-hello');
    const pkgFile = path.join(build, 'package.json');
    const pkg = JSON.parse(await readFile(pkgFile, 'utf8'));
    const scripts = { 'heroku-prebuild': "echo \"pre: it's $((1 + 1))\"", build: "printf '%s\\n' 'b`uild' > built.txt; echo \"$(cat built.txt) done\"" };
    await writeFile(pkgFile, JSON.stringify({ ...pkg, scripts }));
    const result = await compile('nodejs', build, await tempDir('cache'), await envDir({}));
    expect(result.code, result.output).toBe(0);
    expect(result.stdout).toContain("pre: it's 2");
    expect(result.stdout).toContain('b`uild done');
  });

  it('fails on a package.json that is not JSON', async () => {
    const build = await copyFixture('node-hello');
    await writeFile(path.join(build, 'package.json'), '{ "name": ');
    const result = await compile('nodejs', build, await tempDir('cache'), await envDir({}));
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('package.json is not valid JSON');
  });

  it('static: copies the server into the slug and rejects a root outside the app', async () => {
    const build = await copyFixture('static-site');
    const result = await compile('static', build, await tempDir('cache'), await envDir({}));
    expect(result.code, result.output).toBe(0);
    expect(result.stdout).toContain('-----> Static site');
    expect(existsSync(path.join(build, '.flynn/static-server.mjs'))).toBe(true);

    const escaping = await copyFixture('static-site');
    await writeFile(path.join(escaping, 'static.json'), JSON.stringify({ root: '../..' }));
    const bad = await compile('static', escaping, await tempDir('cache'), await envDir({}));
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('root "../.." is outside the app');
  });

  it('procfile: compile builds nothing and says so', async () => {
    const build = await copyFixture('procfile-two');
    const result = await compile('procfile', build, await tempDir('cache'), await envDir({}));
    expect(result.code, result.output).toBe(0);
    expect(result.stdout).toContain('-----> Procfile app: nothing to build');
  });
});

describe('bin/release', () => {
  it('every bin script is executable, so a builder can run it by path', async () => {
    for (const pack of ['nodejs', 'static', 'procfile']) {
      for (const name of ['detect', 'compile', 'release']) {
        const mode = (await stat(path.join(PACKS, pack, 'bin', name))).mode;
        expect(mode & 0o111, `${pack}/bin/${name}`).toBe(0o111);
      }
    }
  });

  it('nodejs: the start script, else server.js, else main, else index.js, else nothing', async () => {
    expect(await release('nodejs', path.join(FIXTURES, 'node-dep'))).toEqual({ default_process_types: { web: 'node server.js' } });
    expect(await release('nodejs', path.join(FIXTURES, 'node-hello'))).toEqual({ default_process_types: { web: 'node server.js' } });

    const app = await tempDir('release');
    await writeFile(path.join(app, 'package.json'), JSON.stringify({ scripts: { start: 'node --enable-source-maps "dist/app.js" # web: x' } }));
    expect(await release('nodejs', app)).toEqual({ default_process_types: { web: 'node --enable-source-maps "dist/app.js" # web: x' } });
    await writeFile(path.join(app, 'package.json'), JSON.stringify({ main: 'lib/main.js' }));
    await mkdir(path.join(app, 'lib'));
    await writeFile(path.join(app, 'lib/main.js'), '');
    await writeFile(path.join(app, 'index.js'), '');
    expect(await release('nodejs', app)).toEqual({ default_process_types: { web: 'node lib/main.js' } });
    await writeFile(path.join(app, 'package.json'), '{}');
    expect(await release('nodejs', app)).toEqual({ default_process_types: { web: 'node index.js' } });
    // yarn 2+ Plug'n'Play: node resolves modules through .pnp.cjs.
    await writeFile(path.join(app, '.pnp.cjs'), '');
    expect(await release('nodejs', app)).toEqual({ default_process_types: { web: 'node -r ./.pnp.cjs index.js' } });
    await rm(path.join(app, '.pnp.cjs'));
    await rm(path.join(app, 'index.js'));
    expect(await release('nodejs', app)).toEqual({ default_process_types: {} });
  });

  it('static and procfile', async () => {
    expect(await release('static', path.join(FIXTURES, 'static-site'))).toEqual({ default_process_types: { web: 'node .flynn/static-server.mjs' } });
    expect(await release('procfile', path.join(FIXTURES, 'procfile-two'))).toEqual({ default_process_types: {} });
  });
});

describe('engines.node check with npm\'s semver (nodejs/lib/pkg.mjs satisfies)', () => {
  it.each([
    ['20.20.2', true], ['20.20.3', false], ['>=18', true], ['>=21', false], ['^20', true], ['^20.21', false],
    ['^18', false], ['20.x', true], ['20', true], ['20.20', true], ['~20.19', false], ['>=18 <21', true],
    ['>= 18 < 20', false], ['^18 || ^20', true], ['*', true], ['<=0.10', false],
    ['18 - 22', true], ['1.2.3 - 2.0.0', false], ['>=20.0.0-rc.1', true], ['lts/*', 'invalid'],
  ])('%s includes 20.20.2: %s', async (range, included) => {
    const result = await run([process.execPath, path.join(PACKS, 'nodejs/lib/pkg.mjs'), 'satisfies', range, 'v20.20.2'], { env: { PATH: process.env.PATH ?? '' } });
    expect(result.code).toBe(included === 'invalid' ? 2 : included ? 0 : 1);
  });
});

describe('the built slugs run', () => {
  const sh = () => findOnPath('sh') ?? '/bin/sh';

  it('node-hello answers on $PORT after sourcing .profile.d (HOME = the app dir)', async () => {
    const build = await copyFixture('node-hello');
    const result = await run(['/bin/sh', path.join(PACKS, 'nodejs/bin/compile'), build, await tempDir('cache'), await envDir({})],
      { env: { PATH: process.env.PATH ?? '' } });
    expect(result.code, result.output).toBe(0);

    const profile = await run([sh(), '-c', '. ./.profile.d/nodejs.sh && echo "$NODE_ENV" && echo "$PATH"'],
      { env: { PATH: '/usr/bin:/bin', HOME: build }, cwd: build });
    expect(profile.stdout.split('\n').slice(0, 2)).toEqual(['production', `${build}/node_modules/.bin:/usr/bin:/bin`]);

    const port = await startWeb([sh(), '-c', '. ./.profile.d/nodejs.sh && exec node server.js'], build);
    const res = await rawRequest(port, '/');
    expect(res.status).toBe(200);
    expect(res.body).toBe(`Hello from flynn-ts on port ${port}\n`);
  });

  describe('the static server', () => {
    let port: number;
    let build: string;

    beforeAll(async () => {
      build = await copyFixture('static-site');
      // A file next to the app that a traversal would reach.
      await writeFile(path.join(path.dirname(build), 'outside.txt'), 'outside the app');
      const result = await run(['/bin/sh', path.join(PACKS, 'static/bin/compile'), build, await tempDir('cache'), await envDir({})],
        { env: { PATH: process.env.PATH ?? '' } });
      expect(result.code, result.output).toBe(0);
      port = await startWeb([process.execPath, '.flynn/static-server.mjs'], build);
    });

    it('serves files with their content types and index.html for directories', async () => {
      const index = await rawRequest(port, '/');
      expect(index.status).toBe(200);
      expect(index.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(index.body).toContain('Hello from a flynn-ts static site');

      const css = await rawRequest(port, '/css/style.css?v=2');
      expect(css.status).toBe(200);
      expect(css.headers['content-type']).toBe('text/css; charset=utf-8');
      expect(css.body).toBe(await readFile(path.join(build, 'css/style.css'), 'utf8'));

      const about = await rawRequest(port, '/about/');
      expect(about.status).toBe(200);
      expect(about.body).toContain('About this site');

      const redirect = await rawRequest(port, '/about');
      expect(redirect.status).toBe(301);
      expect(redirect.headers.location).toBe('/about/');

      const head = await rawRequest(port, '/css/style.css', 'HEAD');
      expect(head.status).toBe(200);
      expect(head.body).toBe('');
    });

    it('answers 404 for missing files and dotfiles, 405 for other methods', async () => {
      expect((await rawRequest(port, '/missing.html')).status).toBe(404);
      expect((await rawRequest(port, '/css/')).status).toBe(404);
      expect((await rawRequest(port, '/.flynn/static-server.mjs')).status).toBe(404);
      expect((await rawRequest(port, '/index.html', 'POST')).status).toBe(405);
    });

    it('refuses paths that climb out of the root, however they are spelled', async () => {
      for (const p of ['/../outside.txt', '/css/../../outside.txt', '/%2e%2e/outside.txt', '/..%2foutside.txt', '/..%5coutside.txt', '/%00']) {
        const res = await rawRequest(port, p);
        expect(res.status, p).toBe(400);
        expect(res.body, p).not.toContain('outside the app');
      }
    });

    it('does not follow a symlink out of the root', async () => {
      await symlink(path.join(path.dirname(build), 'outside.txt'), path.join(build, 'link.txt'));
      expect((await rawRequest(port, '/link.txt')).status).toBe(404);
    });

    it('serves the root named in static.json', async () => {
      const app = await copyFixture('static-site');
      await mkdir(path.join(app, 'public'));
      await writeFile(path.join(app, 'public/index.html'), '<p>public root</p>');
      await writeFile(path.join(app, 'static.json'), JSON.stringify({ root: 'public' }));
      await appendFile(path.join(app, 'index.html'), '<!-- not served -->');
      const result = await run(['/bin/sh', path.join(PACKS, 'static/bin/compile'), app, await tempDir('cache'), await envDir({})],
        { env: { PATH: process.env.PATH ?? '' } });
      expect(result.code, result.output).toBe(0);
      expect(result.stdout).toContain('serving "public"');
      const publicPort = await startWeb([process.execPath, '.flynn/static-server.mjs'], app);
      expect((await rawRequest(publicPort, '/')).body).toBe('<p>public root</p>');
      expect((await rawRequest(publicPort, '/css/style.css')).status).toBe(404);
    });
  });
});

// Real apps against the real npm registry (yarn and pnpm through corepack), compiled with the
// host's sh, node, npm and corepack: the package manager each app's files choose, its install,
// its build, the cache on a second build, and the slug answering on $PORT.
describe('nodejs: real apps with the npm registry', () => {
  /** What a build container gets: the CA bundle of a TLS-intercepting proxy, when there is one. */
  const hostEnv = () => ({
    PATH: process.env.PATH ?? '',
    HOME: path.join(work, 'no-home'),
    ...(process.env.NODE_EXTRA_CA_CERTS ? { NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS } : {}),
  });

  async function compileApp(build: string, cache: string, vars: Record<string, string> = {}, env: Record<string, string> = {}): Promise<RunResult & { ms: number }> {
    const started = performance.now();
    const result = await run(['/bin/sh', path.join(PACKS, 'nodejs/bin/compile'), build, cache, await envDir(vars)], { env: { ...hostEnv(), ...env } });
    return { ...result, ms: Math.round(performance.now() - started) };
  }

  /** Builds a fixture app in a fresh BUILD_DIR and cache; fails the test when the build fails. */
  async function buildApp(name: string, vars: Record<string, string> = {}): Promise<{ build: string; cache: string; result: RunResult & { ms: number } }> {
    const build = await copyFixture(name);
    const cache = await tempDir('cache');
    const result = await compileApp(build, cache, vars);
    expect(result.code, result.output).toBe(0);
    return { build, cache, result };
  }

  /** Starts the slug's web process as the slug runner would (Procfile first, else bin/release) and GETs /. */
  async function answer(build: string): Promise<string> {
    const procfile = await readFile(path.join(build, 'Procfile'), 'utf8').catch(() => undefined);
    const web = procfile?.match(/^web:\s*(.+)$/m)?.[1]
      ?? ((await release('nodejs', build)) as { default_process_types: Record<string, string> }).default_process_types.web;
    expect(web, 'a web command').toBeTruthy();
    const port = await startWeb(['/bin/sh', '-c', `. ./.profile.d/nodejs.sh && exec ${web}`], build);
    const res = await rawRequest(port, '/');
    expect(res.status).toBe(200);
    return res.body;
  }

  it('express with a lock file: npm ci, then a second build restores node_modules without npm', async () => {
    const { cache, result: cold } = await buildApp('express-lock');
    expect(cold.stdout).toContain('-----> Installing dependencies with npm ');
    expect(cold.stdout).toContain('       npm ci (from package-lock.json)');

    const build = await copyFixture('express-lock');
    const npm = await fakeNpm();
    const cached = await compileApp(build, cache, {}, { FLYNN_NPM_CLI: npm.cli });
    expect(cached.code, cached.output).toBe(0);
    expect(cached.stdout.split('\n')).toContain(RESTORE_LINE);
    expect(await npm.calls()).toBe('');
    console.log(`[buildpacks] express-lock compile on the host: cold ${cold.ms} ms, cached ${cached.ms} ms`);
    expect(await answer(build)).toMatch(/^Hello from express-lock \(express 4\.\d+\.\d+, NODE_ENV=production\)\n$/);
  });

  it('express with a lock file under busybox sh with only busybox and node (the slim image) and FLYNN_NPM_CLI', async () => {
    const build = await copyFixture('express-lock');
    const result = await run([busybox, 'sh', path.join(PACKS, 'nodejs/bin/compile'), build, await tempDir('cache'), await envDir({})],
      { env: { ...hostEnv(), PATH: imageBin, FLYNN_NPM_CLI: npmCli } });
    expect(result.code, result.output).toBe(0);
    expect(result.stdout).toContain('npm ci (from package-lock.json)');
    expect(await answer(build)).toMatch(/^Hello from express-lock /);
  });

  it('reinstalls when the lock file changes, and keeps no cache with NODE_MODULES_CACHE=false', async () => {
    const { cache } = await buildApp('npm-workspaces');
    const build = await copyFixture('npm-workspaces');
    const lockFile = path.join(build, 'package-lock.json');
    await writeFile(lockFile, (await readFile(lockFile, 'utf8')).replace('"name": "npm-workspaces"', '"name": "npm-workspaces-renamed"'));
    const changed = await compileApp(build, cache);
    expect(changed.code, changed.output).toBe(0);
    expect(changed.stdout).not.toContain('Restoring node_modules');
    expect(changed.stdout).toContain('npm ci (from package-lock.json)');

    const off = await compileApp(await copyFixture('npm-workspaces'), cache, { NODE_MODULES_CACHE: 'false' });
    expect(off.code, off.output).toBe(0);
    expect(off.stdout).not.toContain('Restoring node_modules');
    expect(off.stdout).not.toContain('Caching node_modules');
    expect(existsSync(path.join(cache, 'nodejs'))).toBe(false);
  });

  it('express without a lock file: npm install, and a rebuild of the unchanged app uses the cache', async () => {
    const { build, cache, result } = await buildApp('express-nolock');
    expect(result.stdout).toContain('npm install (no lock file: versions are resolved now');
    expect(await answer(build)).toMatch(/^Hello from express-nolock \(express 4\./);
    const again = await compileApp(await copyFixture('express-nolock'), cache);
    expect(again.stdout).toContain('-----> Restoring node_modules from cache (unchanged package.json)');
  });

  it('yarn 1: yarn install --frozen-lockfile from the npm registry, through corepack', async () => {
    const { build, cache, result } = await buildApp('yarn-classic');
    expect(result.stdout).toContain('-----> Installing dependencies with yarn 1 (corepack default), classic');
    expect(result.stdout).toContain('       yarn install --frozen-lockfile (from yarn.lock)');
    expect(existsSync(path.join(cache, 'nodejs/yarn-cache'))).toBe(true);
    expect(await answer(build)).toBe('Hello from yarn-classic (ms: 2m, NODE_ENV=production)\n');
  });

  it('yarn 4 with Plug\'n\'Play: yarn install --immutable, the zip cache inside the app', async () => {
    const { build, cache, result } = await buildApp('yarn-berry');
    expect(result.stdout).toContain('-----> Installing dependencies with yarn 4.12.0, berry');
    expect(result.stdout).toContain('       yarn install --immutable (from yarn.lock)');
    expect(existsSync(path.join(build, '.pnp.cjs'))).toBe(true);
    expect(existsSync(path.join(build, 'node_modules'))).toBe(false);
    expect(await answer(build)).toBe('Hello from yarn-berry (ms: 2m, NODE_ENV=production)\n');

    const again = await copyFixture('yarn-berry');
    const cached = await compileApp(again, cache);
    expect(cached.stdout).toContain('-----> Restoring node_modules from cache (unchanged yarn.lock)');
    expect(await answer(again)).toBe('Hello from yarn-berry (ms: 2m, NODE_ENV=production)\n');
  });

  it('yarn 2+ with its release checked in (yarnPath) runs that release, not corepack', async () => {
    const first = await buildApp('yarn-berry');
    const build = await copyFixture('yarn-berry');
    // The release corepack fetched for the first build, checked in as `yarn set version` would.
    await mkdir(path.join(build, '.yarn/releases'), { recursive: true });
    await cp(path.join(first.cache, 'nodejs/corepack/v1/yarn/4.12.0/yarn.js'), path.join(build, '.yarn/releases/yarn-4.12.0.cjs'));
    await appendFile(path.join(build, '.yarnrc.yml'), 'yarnPath: .yarn/releases/yarn-4.12.0.cjs\n');
    const pkgFile = path.join(build, 'package.json');
    const { packageManager: _, ...pkg } = JSON.parse(await readFile(pkgFile, 'utf8'));
    await writeFile(pkgFile, JSON.stringify(pkg, null, 2));
    const cache = await tempDir('cache');
    const result = await compileApp(build, cache);
    expect(result.code, result.output).toBe(0);
    expect(result.stdout).toContain('-----> Installing dependencies with yarn from .yarn/releases/yarn-4.12.0.cjs, berry');
    expect(existsSync(path.join(cache, 'nodejs/corepack/v1'))).toBe(false);
    expect(await answer(build)).toBe('Hello from yarn-berry (ms: 2m, NODE_ENV=production)\n');
  });

  it('pnpm: pnpm install --frozen-lockfile, its store in the cache', async () => {
    const { build, cache, result } = await buildApp('pnpm-app');
    expect(result.stdout).toContain('-----> Installing dependencies with pnpm 10.28.1');
    expect(result.stdout).toContain('       pnpm install --frozen-lockfile (from pnpm-lock.yaml)');
    expect(existsSync(path.join(cache, 'nodejs/pnpm-store'))).toBe(true);
    expect(await answer(build)).toBe('Hello from pnpm-app (ms: 2m, NODE_ENV=production)\n');
  });

  it('npm workspaces: the workspace packages and their dependencies are installed', async () => {
    const { build } = await buildApp('npm-workspaces');
    expect(await answer(build)).toBe('Hello from npm-workspaces (workspace greeter, ms: 2m, NODE_ENV=production)\n');
  });

  it.each([
    ['yarn@1.22.22', 'yarn 1 (workspaces in package.json)', {}],
    ['pnpm@10.28.1', 'pnpm (pnpm-workspace.yaml)', { 'pnpm-workspace.yaml': 'packages:\n  - packages/*\n' }],
  ])('%s workspaces: the npm-workspaces app without its npm lock file, installed by %s', async (manager, _what, files) => {
    const build = await copyFixture('npm-workspaces');
    await rm(path.join(build, 'package-lock.json'));
    for (const [name, text] of Object.entries(files)) await writeFile(path.join(build, name), text);
    const pkgFile = path.join(build, 'package.json');
    const pkg = JSON.parse(await readFile(pkgFile, 'utf8'));
    const greeter = manager.startsWith('pnpm') ? 'workspace:*' : '1.0.0';
    await writeFile(pkgFile, JSON.stringify({ ...pkg, packageManager: manager, dependencies: { greeter } }, null, 2));
    const result = await compileApp(build, await tempDir('cache'));
    expect(result.code, result.output).toBe(0);
    expect(result.stdout).toContain(`-----> Installing dependencies with ${manager.replace('@', ' ')}`);
    expect(await answer(build)).toBe('Hello from npm-workspaces (workspace greeter, ms: 2m, NODE_ENV=production)\n');
  });

  it('a native module compiles with node-gyp against the stack node\'s headers', async () => {
    const { build, result } = await buildApp('native-addon');
    expect(result.stdout).toContain('gyp info ok');
    expect(existsSync(path.join(build, 'node_modules/flynn-hello-addon/build/Release/hello.node'))).toBe(true);
    expect(await answer(build)).toBe('Hello from native-addon (compiled hello)\n');
  });

  it('a build script that writes the Procfile: the slug has it, and its web type answers', async () => {
    const { build } = await buildApp('procfile-build');
    expect(await readFile(path.join(build, 'Procfile'), 'utf8')).toBe('web: node dist/server.js\nworker: node dist/server.js --worker\n');
    expect(await release('nodejs', build)).toEqual({ default_process_types: {} });
    expect(await answer(build)).toBe('Hello from procfile-build (dist/server.js, from the Procfile the build wrote)\n');
  });

  it('devDependencies are there for the build and pruned after it; NPM_CONFIG_PRODUCTION=false keeps them', async () => {
    const { build, result } = await buildApp('devdeps-build');
    expect(result.stdout).toContain('-----> Pruning devDependencies');
    expect(existsSync(path.join(build, 'node_modules/uglify-js'))).toBe(false);
    expect(existsSync(path.join(build, 'node_modules/ms'))).toBe(true);
    expect(await readFile(path.join(build, 'dist/server.js'), 'utf8')).not.toContain('flynn-ts fixture devdeps-build');
    expect(await answer(build)).toBe('Hello from devdeps-build (minified, ms: 2m, NODE_ENV=production)\n');

    const kept = await buildApp('devdeps-build', { NPM_CONFIG_PRODUCTION: 'false' });
    expect(kept.result.stdout).toContain('skipped: NPM_CONFIG_PRODUCTION is false, so devDependencies stay in the slug');
    expect(existsSync(path.join(kept.build, 'node_modules/uglify-js'))).toBe(true);
  });

  it('runs Heroku\'s lifecycle in order with npm: heroku-prebuild, install, prebuild/build/postbuild, prune, heroku-cleanup', async () => {
    const build = await copyFixture('devdeps-build');
    const pkgFile = path.join(build, 'package.json');
    const pkg = JSON.parse(await readFile(pkgFile, 'utf8'));
    const mark = (name: string) => `echo "step ${name} NODE_ENV=$NODE_ENV"`;
    pkg.scripts = {
      ...pkg.scripts,
      'heroku-prebuild': mark('heroku-prebuild'),
      prebuild: mark('prebuild'),
      postbuild: mark('postbuild'),
      'heroku-cleanup': `${mark('heroku-cleanup')}; test ! -d node_modules/uglify-js && echo "step devDependencies gone"`,
    };
    await writeFile(pkgFile, JSON.stringify(pkg, null, 2));
    const result = await compileApp(build, await tempDir('cache'));
    expect(result.code, result.output).toBe(0);
    const steps = result.stdout.split('\n').filter((l) => /^ {7}step |^-----> (Installing|Pruning)/.test(l)).map((l) => l.trim());
    expect(steps).toEqual([
      'step heroku-prebuild NODE_ENV=production',
      expect.stringMatching(/^-----> Installing dependencies with npm/),
      'step prebuild NODE_ENV=production',
      'step postbuild NODE_ENV=production',
      '-----> Pruning devDependencies',
      'step heroku-cleanup NODE_ENV=production',
      'step devDependencies gone',
    ]);
  });

  it('folds npm\'s wall of "old lockfile" warnings into one line', async () => {
    const { build, result } = await buildApp('npm-old-lockfile');
    expect(result.stdout.split('\n').filter((l) => l.includes('old lockfile'))).toEqual([
      "       npm warn old lockfile: package-lock.json was made by npm 6 or older, so npm fetches every package's metadata again; run npm install with a newer npm and commit the lock file",
    ]);
    expect(await answer(build)).toBe('Hello from npm-old-lockfile (ms: 2m, NODE_ENV=production)\n');
  });

  it('honours the app\'s .npmrc', async () => {
    const build = await copyFixture('express-nolock');
    await writeFile(path.join(build, '.npmrc'), 'registry=http://127.0.0.1:9/\nfetch-retries=0\n');
    const result = await compileApp(build, await tempDir('cache'));
    expect(result.code).not.toBe(0);
    expect(result.output).toContain('127.0.0.1:9');
  });

  it.each([
    ['npm-out-of-sync', '', /^ ! {5}Build failed: package-lock\.json is out of sync with package\.json \(Missing: left-pad@1\.3\.0 from lock file\): run npm install and commit package-lock\.json$/],
    ['npm-missing-dep', '', /^ ! {5}Build failed: the dependency flynn-ts-no-such-package-e404@\^1\.0\.0 is not in the npm registry \(E404\): check its name in package\.json$/],
    ['yarn-classic', 'add-dep', /^ ! {5}Build failed: yarn\.lock is out of sync with package\.json: run yarn install and commit yarn\.lock$/],
    ['yarn-berry', 'add-dep', /^ ! {5}Build failed: yarn\.lock is out of sync with package\.json \(yarn install --immutable would change it\): run yarn install and commit yarn\.lock$/],
    ['pnpm-app', 'add-dep', /^ ! {5}Build failed: pnpm-lock\.yaml is out of sync with package\.json.*: run pnpm install and commit pnpm-lock\.yaml$/],
    ['yarn-classic', 'missing-dep', /^ ! {5}Build failed: the dependency flynn-ts-no-such-package-e404 is not in the npm registry: check its name in package\.json$/],
    ['express-nolock', 'no-version', /^ ! {5}Build failed: no version of express@\^99\.0\.0 is in the npm registry: check its range in package\.json$/],
    ['pnpm-app', 'bad-hash', /^ ! {5}Build failed: corepack downloaded pnpm, but it is not what packageManager's hash pins \(Mismatch hashes\. Expected 0{40}, got [0-9a-f]{40}\): fix the hash in package\.json$/],
    ['pnpm-app', 'missing-dep', /^ ! {5}Build failed: the dependency flynn-ts-no-such-package-e404 is not in the npm registry \(404 from registry\.npmjs\.org\): check its name in package\.json$/],
  ])('%s (%s) fails with its cause in one line', async (app, change, line) => {
    const build = await copyFixture(app);
    const pkgFile = path.join(build, 'package.json');
    const pkg = JSON.parse(await readFile(pkgFile, 'utf8'));
    if (change === 'add-dep') pkg.dependencies = { ...pkg.dependencies, 'left-pad': '^1.3.0' };
    // pnpm checks the lock file before the registry: without one, it asks the registry.
    if (change === 'missing-dep') {
      pkg.dependencies = { ...pkg.dependencies, 'flynn-ts-no-such-package-e404': '^1.0.0' };
      await rm(path.join(build, 'pnpm-lock.yaml'), { force: true });
    }
    if (change === 'no-version') pkg.dependencies = { ...pkg.dependencies, express: '^99.0.0' };
    if (change === 'bad-hash') pkg.packageManager = `${pkg.packageManager}+sha1.${'0'.repeat(40)}`;
    await writeFile(pkgFile, JSON.stringify(pkg, null, 2));
    const result = await compileApp(build, await tempDir('cache'));
    expect(result.code).not.toBe(0);
    expect(result.stderr.trimEnd().split('\n'), result.output).toEqual([expect.stringMatching(line)]);
  });
});

// The same buildpack in the stack image (`npm run images` builds flynn-ts/stack), as a build
// container runs it: bridge network, the host's CA bundle, npm and corepack from the image.
const STACK_IMAGE = 'flynn-ts/stack:latest';
const STACK_RUN = `buildpacks-${process.pid}`;
const docker = (args: string[]) => run(['docker', ...args], { env: { PATH: process.env.PATH ?? '' } });
const stackReady = (await needDocker('nodejs buildpack in the stack image')) && (await docker(['image', 'inspect', STACK_IMAGE])).code === 0;
if (!stackReady) console.warn(`[skipped] nodejs buildpack in the stack image: no ${STACK_IMAGE} (npm run images builds it)`);

describe.runIf(stackReady)('nodejs: real apps in the stack image', () => {
  const CA = '/etc/ssl/certs/ca-certificates.crt';

  afterAll(async () => {
    const ids = (await docker(['ps', '-aq', '--filter', `label=io.flynn-ts.test.buildpacks=${STACK_RUN}`])).stdout.split('\n').filter(Boolean);
    if (ids.length) await docker(['rm', '-f', ...ids]);
  });

  /** bin/compile of `build` in a stack container; the time includes the container's start. */
  async function compileInStack(build: string, cache: string): Promise<RunResult & { ms: number }> {
    const env = await envDir({});
    const started = performance.now();
    const result = await docker([
      'run', '--rm', '--network', 'bridge', '--label', 'io.flynn-ts.test=1', '--label', `io.flynn-ts.test.buildpacks=${STACK_RUN}`,
      '-v', `${PACKS}:/flynn/buildpacks:ro`, '-v', `${build}:/tmp/build`, '-v', `${cache}:/tmp/cache`, '-v', `${env}:/tmp/env:ro`,
      ...(existsSync(CA) ? ['-v', `${CA}:${CA}:ro`, '-e', `NODE_EXTRA_CA_CERTS=${CA}`] : []),
      '-e', 'HOME=/tmp', '-w', '/tmp/build', STACK_IMAGE, '/flynn/buildpacks/nodejs/bin/compile', '/tmp/build', '/tmp/cache', '/tmp/env',
    ]);
    return { ...result, ms: Math.round(performance.now() - started) };
  }

  it('express with a lock file: cold, then cached (measured)', async () => {
    const cache = await tempDir('cache');
    const cold = await compileInStack(await copyFixture('express-lock'), cache);
    expect(cold.code, cold.output).toBe(0);
    expect(cold.stdout).toContain('npm ci (from package-lock.json)');
    const build = await copyFixture('express-lock');
    const cached = await compileInStack(build, cache);
    expect(cached.code, cached.output).toBe(0);
    expect(cached.stdout.split('\n')).toContain(RESTORE_LINE);
    // What makes the cached build fast: nothing is installed again (its time is `npm run bench -- build`).
    expect(cached.stdout).not.toContain('Installing dependencies');
    expect(cached.stdout).not.toContain('npm ci');
    console.log(`[buildpacks] express-lock compile in ${STACK_IMAGE} (docker run included): cold ${cold.ms} ms, cached ${cached.ms} ms`);
    expect(existsSync(path.join(build, 'node_modules/express/package.json'))).toBe(true);
  });

  it.each(['yarn-classic', 'yarn-berry', 'pnpm-app', 'npm-workspaces'])('%s builds with the image\'s corepack or npm', async (app) => {
    const build = await copyFixture(app);
    const result = await compileInStack(build, await tempDir('cache'));
    expect(result.code, result.output).toBe(0);
    expect(result.stdout).toContain('-----> Node.js build done');
  });

  it('a native module compiles with node-gyp (python3, make, g++ and node\'s headers on the stack)', async () => {
    const headers = await docker(['run', '--rm', '--label', `io.flynn-ts.test.buildpacks=${STACK_RUN}`, STACK_IMAGE, 'sh', '-c', 'test -f "$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")/include/node/node.h"']);
    expect(headers.code, `${STACK_IMAGE} must hold node's headers (<node prefix>/include/node) for node-gyp to build without downloading them`).toBe(0);
    const build = await copyFixture('native-addon');
    const result = await compileInStack(build, await tempDir('cache'));
    expect(result.code, result.output).toBe(0);
    expect(existsSync(path.join(build, 'node_modules/flynn-hello-addon/build/Release/hello.node'))).toBe(true);
  });
});
