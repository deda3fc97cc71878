// package.json helper for the Node.js buildpack's shell scripts. The build image has busybox and
// node but no jq, so JSON is read here rather than with sed. Dependency-free on purpose.
//
//   node pkg.mjs check FILE              exit 2 with a message unless FILE is a JSON object
//   node pkg.mjs get FILE KEY.PATH       print a string/number field (nothing when absent)
//   node pkg.mjs count FILE FIELD...     print how many entries the named objects hold together
//   node pkg.mjs satisfies RANGE VERSION exit 0 if VERSION is in RANGE, 1 if not, 2 if RANGE is not understood
//   node pkg.mjs cache-key FILE...       print a sha256 of the files (missing ones count as absent),
//                                        the node version and the platform
//   node pkg.mjs release DIR             print the bin/release YAML for the app in DIR
//   node pkg.mjs facts FILE              print, as sh assignments for `eval`, everything bin/compile
//                                        needs from FILE (one node start instead of one per fact)
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

function readPackage(file) {
  let pkg;
  try {
    pkg = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    console.error(`${path.basename(file)} is not valid JSON: ${err.message}`);
    process.exit(2);
  }
  if (pkg === null || typeof pkg !== 'object' || Array.isArray(pkg)) {
    console.error(`${path.basename(file)} must hold a JSON object`);
    process.exit(2);
  }
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

// --- a semver subset, enough for engines.node: exact versions, x-ranges (20, 20.x, 20.1),
// comparators (>=, >, <=, <, =), ^ and ~, several comparators ANDed by spaces, ORed by "||".
// Pre-release tags and hyphen ranges are not understood (the caller then only warns).

const PARTIAL = /^v?(\d+|[xX*])(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?$/;

function cmp(a, b) {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  return 0;
}

/** Parses "20", "20.x", "20.1.2" into the given numbers (null for a wildcard or a missing part). */
function parsePartial(text) {
  const m = PARTIAL.exec(text);
  if (!m) return undefined;
  const parts = [];
  for (const p of m.slice(1)) {
    if (p === undefined || /^[xX*]$/.test(p)) break; // everything after a wildcard is a wildcard too
    parts.push(Number(p));
  }
  return parts;
}

/** One comparator as [lowest allowed (inclusive), first not allowed (exclusive)], either may be null. */
function bounds(comparator) {
  const m = /^(>=|<=|>|<|=|\^|~)?(.*)$/.exec(comparator);
  const op = m[1] ?? '=';
  const parts = parsePartial(m[2]);
  if (parts === undefined) return undefined;
  const [major = 0, minor = 0, patch = 0] = parts;
  const low = [major, minor, patch];
  // The version just past the partial: 20 → 21.0.0, 20.1 → 20.2.0, 20.1.2 → 20.1.3.
  const next = parts.length === 0 ? null
    : parts.length === 1 ? [major + 1, 0, 0]
      : parts.length === 2 ? [major, minor + 1, 0]
        : [major, minor, patch + 1];
  switch (op) {
    case '=': return [low, next];
    case '>=': return [low, null];
    case '>': return [next ?? [Infinity, 0, 0], null];
    case '<': return [null, parts.length === 0 ? [0, 0, 0] : low];
    case '<=': return [null, next];
    case '~': return [low, parts.length >= 2 ? [major, minor + 1, 0] : next];
    case '^': {
      // ^ allows changes that keep the left-most non-zero part.
      if (major > 0 || parts.length <= 1) return [low, next && [major + 1, 0, 0]];
      if (minor > 0 || parts.length === 2) return [low, [0, minor + 1, 0]];
      return [low, [0, 0, patch + 1]];
    }
  }
  return undefined;
}

function satisfies(range, versionText) {
  const version = parsePartial(versionText.trim());
  if (!version || version.length !== 3) return 2;
  let understood = true;
  const alternatives = range.split('||').map((alt) =>
    alt.trim().replace(/(>=|<=|>|<|=|\^|~)\s+/g, '$1').split(/\s+/).filter(Boolean));
  for (const comparators of alternatives) {
    let ok = true;
    for (const c of comparators.length ? comparators : ['*']) {
      const b = bounds(c);
      if (!b) { understood = false; ok = false; break; }
      if ((b[0] && cmp(version, b[0]) < 0) || (b[1] && cmp(version, b[1]) >= 0)) ok = false;
    }
    if (ok) return 0;
  }
  return understood ? 1 : 2;
}

function cacheKey(files) {
  const hash = createHash('sha256');
  // node_modules may hold native addons built for one node ABI and platform.
  hash.update(`${process.version} ${process.platform} ${process.arch}\0`);
  for (const file of files) {
    hash.update(`${path.basename(file)}\0`);
    hash.update(existsSync(file) ? readFileSync(file) : '(absent)');
    hash.update('\0');
  }
  return hash.digest('hex');
}

/** The command `npm start` would run, found without npm: scripts.start, server.js, main, index.js. */
function webCommand(dir) {
  const pkg = readPackage(path.join(dir, 'package.json'));
  const start = field(pkg, 'scripts.start');
  if (start) return start;
  if (existsSync(path.join(dir, 'server.js'))) return 'node server.js';
  const main = field(pkg, 'main');
  if (main && existsSync(path.join(dir, main))) return `node ${main}`;
  if (existsSync(path.join(dir, 'index.js'))) return 'node index.js';
  return undefined;
}

/** Single-quoted for sh: safe to `eval` whatever the string holds. */
const shQuote = (text) => `'${String(text).replaceAll("'", `'\\''`)}'`;

/** The facts bin/compile reads, as `name='value'` lines. */
function facts(file) {
  const pkg = readPackage(file);
  const count = (...names) => names.reduce((n, name) => n + (pkg[name] && typeof pkg[name] === 'object' ? Object.keys(pkg[name]).length : 0), 0);
  const range = field(pkg, 'engines.node') ?? '';
  const lines = {
    node_version: process.version,
    range,
    engines_rc: range ? satisfies(range, process.version) : 0,
    deps: count('dependencies', 'devDependencies', 'optionalDependencies'),
    dev_deps: count('devDependencies'),
  };
  for (const script of ['heroku-prebuild', 'heroku-postbuild', 'build']) lines[`script_${script.replace('-', '_')}`] = field(pkg, `scripts.${script}`) ?? '';
  return Object.entries(lines).map(([name, value]) => `${name}=${shQuote(value)}`).join('\n');
}

const [command, ...args] = process.argv.slice(2);
switch (command) {
  case 'check':
    readPackage(args[0]);
    break;
  case 'get': {
    const value = field(readPackage(args[0]), args[1]);
    if (value !== undefined) console.log(value);
    break;
  }
  case 'count': {
    const pkg = readPackage(args[0]);
    let n = 0;
    for (const name of args.slice(1)) {
      const deps = pkg[name];
      if (deps && typeof deps === 'object') n += Object.keys(deps).length;
    }
    console.log(n);
    break;
  }
  case 'satisfies':
    process.exit(satisfies(args[0], args[1]));
    break;
  case 'cache-key':
    console.log(cacheKey(args));
    break;
  case 'facts':
    console.log(facts(args[0]));
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
