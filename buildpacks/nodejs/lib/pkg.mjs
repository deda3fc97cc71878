// package.json helper for the Node.js buildpack's shell scripts. The build image may have busybox
// and node only (no jq), so JSON is read here rather than with sed. Dependency-free, except for
// the `semver` package that npm ships, found in npm's own node_modules.
//
//   node pkg.mjs facts DIR             print, as sh assignments for `eval`, everything bin/compile
//                                      needs to know about the app in DIR (one node start)
//   node pkg.mjs satisfies RANGE VER   exit 0 if VER is in RANGE, 1 if not, 2 if RANGE is not valid,
//                                      3 if npm's semver cannot be found
//   node pkg.mjs outputs DIR           print the paths (relative to DIR) an install made, one a line
//   node pkg.mjs release DIR           print the bin/release YAML for the app in DIR
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

/** Bumped when what the cache holds changes shape, so an older cache is never taken for a good one. */
const CACHE_FORMAT = 'flynn-nodejs-cache-2';
const MANAGERS = ['npm', 'yarn', 'pnpm'];
const LOCKFILES = [['npm-shrinkwrap.json', 'npm'], ['package-lock.json', 'npm'], ['yarn.lock', 'yarn'], ['pnpm-lock.yaml', 'pnpm']];
/** What yarn 2+ writes next to node_modules (Plug'n'Play): kept in the cache with node_modules. */
const BERRY_OUTPUTS = ['.pnp.cjs', '.pnp.loader.mjs', '.pnp.data.json', '.yarn/cache', '.yarn/unplugged', '.yarn/install-state.gz', '.yarn/build-state.yml'];

class AppError extends Error {}

function readPackage(file) {
  let pkg;
  try {
    pkg = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new AppError(`${path.basename(file)} is not valid JSON: ${err.message}`);
  }
  if (pkg === null || typeof pkg !== 'object' || Array.isArray(pkg)) throw new AppError(`${path.basename(file)} must hold a JSON object`);
  return pkg;
}

function field(pkg, dotted) {
  let value = pkg;
  for (const key of dotted.split('.')) {
    if (value === null || typeof value !== 'object') return undefined;
    value = value[key];
  }
  return typeof value === 'string' || typeof value === 'number' ? String(value) : undefined;
}

const readText = (file) => (existsSync(file) ? readFileSync(file, 'utf8') : undefined);
const count = (pkg, ...names) => names.reduce((n, name) => n + (pkg[name] && typeof pkg[name] === 'object' ? Object.keys(pkg[name]).length : 0), 0);

// --- where npm (and what ships with it) is ------------------------------------------------------

function onPath(name) {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = dir && path.join(dir, name);
    if (candidate && existsSync(candidate)) return realpathSync(candidate);
  }
  return undefined;
}

/** npm's package directory: FLYNN_NPM_CLI's, else the npm on PATH's, else the one installed beside node. */
function npmPackageDir() {
  const cli = process.env.FLYNN_NPM_CLI || onPath('npm');
  const candidates = [
    cli && path.dirname(path.dirname(cli)),
    path.resolve(path.dirname(process.execPath), '../lib/node_modules/npm'),
  ];
  return candidates.find((dir) => dir && existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'node_modules/semver')));
}

/** The corepack that ships with node: the one on PATH, else the one next to npm's package. */
function corepackScript(npmDir) {
  const onpath = onPath('corepack');
  const candidates = [onpath, npmDir && path.join(path.dirname(npmDir), 'corepack/dist/corepack.js')];
  return candidates.find((file) => file && file.endsWith('.js') && existsSync(file)) ?? '';
}

let semverModule;
function semver() {
  if (semverModule === undefined) {
    const dir = npmPackageDir();
    semverModule = dir ? createRequire(path.join(dir, 'package.json'))('semver') : null;
  }
  return semverModule;
}

/** 0 if `version` is in `range`, 1 if not, 2 if the range is not valid, 3 without npm's semver. */
function satisfies(range, version) {
  const sv = semver();
  if (!sv) return 3;
  if (sv.validRange(range) === null) return 2;
  return sv.satisfies(version, range) ? 0 : 1;
}

// --- the package manager -----------------------------------------------------------------------

/** `packageManager: "pnpm@9.1.0+sha512.abc"` as { name, version }. */
function parsePackageManager(value) {
  if (value === undefined) return undefined;
  const m = /^(@?[^@\s]+)@([^+\s]+)(?:\+\S+)?$/.exec(value);
  if (!m) throw new AppError(`package.json's packageManager "${value}" is not NAME@VERSION (e.g. "pnpm@9.12.0")`);
  if (!MANAGERS.includes(m[1])) throw new AppError(`package.json's packageManager names ${m[1]}, which this buildpack does not support (npm, yarn or pnpm)`);
  return { name: m[1], version: m[2] };
}

/** yarnPath from .yarnrc.yml, when the release it names is checked in. */
function yarnPath(dir) {
  const m = /^yarnPath:\s*["']?([^"'\n]+?)["']?\s*$/m.exec(readText(path.join(dir, '.yarnrc.yml')) ?? '');
  return m && existsSync(path.join(dir, m[1])) ? m[1] : '';
}

/** Which package manager builds the app, from its lock file and packageManager field. */
function packageManager(dir, pkg) {
  const locks = LOCKFILES.filter(([file]) => existsSync(path.join(dir, file)));
  const byManager = [...new Map(locks.map(([file, pm]) => [pm, file])).entries()];
  if (byManager.length > 1) {
    const list = byManager.map(([pm, file]) => `${file} (${pm})`).join(' and ');
    throw new AppError(`The app has lock files of two package managers, ${list}: delete the one you do not use`);
  }
  const declared = parsePackageManager(field(pkg, 'packageManager'));
  const [lockPm, lockfile] = byManager[0] ?? [undefined, ''];
  if (declared && lockPm && declared.name !== lockPm) {
    throw new AppError(`package.json's packageManager says ${declared.name}@${declared.version} but the lock file is ${lockfile} (${lockPm}): use one package manager`);
  }
  const name = lockPm ?? declared?.name ?? 'npm';
  let flavor = '';
  const vendored = name === 'yarn' ? yarnPath(dir) : '';
  if (name === 'yarn') {
    const berryLock = /^__metadata:/m.test(readText(path.join(dir, 'yarn.lock')) ?? '');
    const berryDeclared = declared && Number.parseInt(declared.version, 10) >= 2;
    flavor = berryLock || berryDeclared || vendored || existsSync(path.join(dir, '.yarnrc.yml')) ? 'berry' : 'classic';
  }
  // corepack reads packageManager itself (and checks its hash). Without it, a berry yarn.lock
  // needs yarn 2+ named explicitly; corepack's defaults do otherwise.
  const pin = !declared && flavor === 'berry' && !vendored ? DEFAULT_BERRY : '';
  return { name, flavor, version: declared?.version ?? pin, pin, lockfile: locks[0]?.[0] ?? '', vendored };
}
/** yarn 2+ for a berry yarn.lock without packageManager or yarnPath: corepack's own default for it. */
const DEFAULT_BERRY = '4.12.0';

// --- the app's package.json files --------------------------------------------------------------

/**
 * Walk the app's directories (dot directories skipped, 6 levels at most), calling `visit(rel, entry)`
 * for each entry; a directory is entered only when `visit` returns true for it.
 */
function walkApp(dir, visit) {
  const walk = (rel, depth) => {
    let entries;
    try {
      entries = readdirSync(path.join(dir, rel), { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (visit(rel, e) && e.isDirectory() && depth < 6 && !e.name.startsWith('.')) walk(path.join(rel, e.name), depth + 1);
    }
  };
  walk('', 0);
}

/** Every package.json of the app (the root first), node_modules and dot directories skipped. */
function packageFiles(dir) {
  const found = [];
  walkApp(dir, (rel, e) => {
    if (e.isFile() && e.name === 'package.json') found.push(path.join(rel, e.name));
    return e.name !== 'node_modules';
  });
  return found.sort((a, b) => a.split(path.sep).length - b.split(path.sep).length || (a < b ? -1 : 1));
}

/**
 * What decides the installed dependencies: the buildpack's cache format, node, the package
 * manager, every package.json, the lock file, the package managers' config files and config vars.
 */
function cacheKey(dir, pm, files, npmVersion) {
  const hash = createHash('sha256');
  // node_modules may hold native addons built for one node ABI and platform.
  hash.update(`${CACHE_FORMAT} ${process.version} ${process.platform} ${process.arch} npm ${npmVersion} ${pm.name} ${pm.flavor} ${pm.version} ${pm.vendored}\0`);
  const configFiles = ['npm-shrinkwrap.json', 'package-lock.json', 'yarn.lock', 'pnpm-lock.yaml', 'pnpm-workspace.yaml', '.npmrc', '.yarnrc', '.yarnrc.yml', '.pnpmfile.cjs'];
  for (const file of [...files, ...configFiles]) {
    hash.update(`${file}\0`);
    hash.update(readText(path.join(dir, file)) ?? '(absent)');
    hash.update('\0');
  }
  const config = Object.entries(process.env).filter(([k]) => /^(npm_config_|yarn_|pnpm_|node_modules_cache$)/i.test(k)).sort();
  hash.update(JSON.stringify(config));
  return hash.digest('hex');
}

/** The web command `npm start` would run, found without npm: scripts.start, server.js, main, index.js. */
function webCommand(dir) {
  const pkg = readPackage(path.join(dir, 'package.json'));
  const start = field(pkg, 'scripts.start');
  if (start) return start;
  // A Plug'n'Play app (yarn 2+) resolves its modules through .pnp.cjs.
  const node = existsSync(path.join(dir, '.pnp.cjs')) ? 'node -r ./.pnp.cjs' : 'node';
  if (existsSync(path.join(dir, 'server.js'))) return `${node} server.js`;
  const main = field(pkg, 'main');
  if (main && existsSync(path.join(dir, main))) return `${node} ${main}`;
  if (existsSync(path.join(dir, 'index.js'))) return `${node} index.js`;
  return undefined;
}

/** The directories and files an install wrote: every top node_modules, and yarn 2+'s PnP files. */
function installOutputs(dir) {
  const out = [];
  walkApp(dir, (rel, e) => {
    if (!e.isDirectory() || e.name !== 'node_modules' || e.name.startsWith('.')) return true;
    out.push(path.join(rel, e.name));
    return false;
  });
  return [...out.sort(), ...BERRY_OUTPUTS.filter((p) => existsSync(path.join(dir, p)))];
}

/** Single-quoted for sh: safe to `eval` whatever the string holds. */
const shQuote = (text) => `'${String(text).replaceAll("'", `'\\''`)}'`;

/** The facts bin/compile reads, as `name='value'` lines. */
function facts(dir) {
  const pkg = readPackage(path.join(dir, 'package.json'));
  const pm = packageManager(dir, pkg);
  const files = packageFiles(dir);
  // Workspace members count when the app declares workspaces; another package.json is just a file.
  const workspaces = pkg.workspaces !== undefined || existsSync(path.join(dir, 'pnpm-workspace.yaml'));
  const pkgs = workspaces ? files.map((f) => (f === 'package.json' ? pkg : readPackage(path.join(dir, f)))) : [pkg];
  const npmDir = npmPackageDir() ?? '';
  const npmVersion = npmDir ? field(readPackage(path.join(npmDir, 'package.json')), 'version') ?? '' : '';
  const range = field(pkg, 'engines.node') ?? '';
  // node-gyp compiles against the running node's headers when they are installed (no download).
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  const lines = {
    node_version: process.version,
    range,
    engines_rc: range ? satisfies(range, process.version) : 0,
    deps: pkgs.reduce((n, p) => n + count(p, 'dependencies', 'devDependencies', 'optionalDependencies'), 0),
    dev_deps: pkgs.reduce((n, p) => n + count(p, 'devDependencies'), 0),
    workspaces: workspaces ? 1 : 0,
    pm: pm.name,
    pm_flavor: pm.flavor,
    pm_version: pm.version,
    pm_pin: pm.pin,
    lockfile: pm.lockfile,
    yarn_path: pm.vendored,
    npm_version: npmVersion,
    npm_dir: npmDir,
    corepack_js: corepackScript(npmDir || undefined),
    node_headers: existsSync(path.join(prefix, 'include/node/node.h')) ? prefix : '',
    cache_key: cacheKey(dir, pm, files, npmVersion),
  };
  for (const script of ['heroku-prebuild', 'heroku-postbuild', 'build', 'heroku-cleanup']) lines[`script_${script.replace('-', '_')}`] = field(pkg, `scripts.${script}`) ?? '';
  return Object.entries(lines).map(([name, value]) => `${name}=${shQuote(value)}`).join('\n');
}

const [command, ...args] = process.argv.slice(2);
try {
  switch (command) {
    case 'facts':
      console.log(facts(args[0]));
      break;
    case 'satisfies':
      process.exit(satisfies(args[0], args[1]));
      break;
    case 'outputs':
      for (const p of installOutputs(args[0])) console.log(p);
      break;
    case 'release': {
      const web = webCommand(args[0]);
      // A JSON string is a valid YAML scalar, so any start script survives quoting.
      console.log(web ? `default_process_types:\n  web: ${JSON.stringify(web)}` : 'default_process_types: {}');
      break;
    }
    default:
      console.error(`pkg.mjs: unknown command ${JSON.stringify(command)}`);
      process.exit(2);
  }
} catch (err) {
  if (!(err instanceof AppError)) throw err;
  // For `facts`, the reason travels on stdout with the facts: stderr may carry node's own warnings.
  if (command === 'facts') {
    console.log(`facts_error=${shQuote(err.message)}`);
  } else {
    console.error(err.message);
    process.exit(2);
  }
}
