/**
 * The bootstrap manifest (Flynn's bootstrap manifest, as plain data): where layer 0 is and how to
 * start layer 1 onto it. JSON or YAML; `${VAR}` in a string value is taken from the environment
 * so secrets stay out of the file. Validation is strict: an unknown key or a wrong type is an
 * error that names the field path.
 */
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { BootstrapManifestError, type ManifestProblem } from './errors.js';
import type { BuildNetwork, ClusterRuntime } from './platform.js';

/** Where the running layer 0 registers. Memory discovery cannot be shared with host agents in other processes, so it is not offered. */
export type ManifestDiscovery =
  | {
      backend: 'etcd';
      /** etcd v3 endpoints, e.g. `['http://127.0.0.1:2379']`. */
      endpoints: string[];
      /** Key prefix the host agents use (`--etcd-prefix`). Default `/flynn-ts`. */
      prefix?: string;
      /** Longest wait for discovery to answer at start, in ms. Default 5000. */
      timeoutMs?: number;
    } & ManifestEtcdAuth
  | {
      backend: 'http';
      /** Base URL of a discovery server (`examples/discoverd`). */
      url: string;
      /** Longest wait for discovery to answer at start, in ms. Default 5000. */
      timeoutMs?: number;
    };

/** How to authenticate to etcd (with `https://` endpoints: `tls.ca`; `--client-cert-auth`: `tls.cert` and `tls.key`; etcd users: `username` and `password`, best `${ETCD_PASSWORD}`). */
export interface ManifestEtcdAuth {
  /** PEM files. */
  tls?: { ca?: string; cert?: string; key?: string };
  username?: string;
  password?: string;
}

/** The controller's store. Default: etcd on the discovery's endpoints under `<prefix>/controller/` with etcd discovery, else memory. */
export type ManifestStore =
  | { backend: 'memory' }
  | {
      backend: 'etcd';
      /** Default: the discovery's endpoints. */
      endpoints?: string[];
      /** Default `<discovery prefix>/controller/`. */
      prefix?: string;
    } & ManifestEtcdAuth;

export interface BootstrapManifest {
  discovery: ManifestDiscovery;
  /** Shelf blobs, git repositories and the SSH host key. Default: a temp dir removed on close. */
  dataDir?: string;
  /** Address every layer-1 service listens on. Default `127.0.0.1`. */
  listen?: string;
  /** Apps answer at `<app>.<domain>`. Default `flynn.local`. */
  domain?: string;
  /** Cluster key (controller auth); write `${CONTROLLER_KEY}` rather than the key. Default: generated. */
  key?: string;
  /** Where builds run. Default `auto`. */
  build?: ClusterRuntime;
  /** Image builds run in (Docker); must exist. Default: the stack image when built, else the slim runtime image. */
  image?: string;
  /** Network of build containers: `bridge` (default), `host`, or `none` for isolated builds. */
  buildNetwork?: BuildNetwork;
  /** Extra environment of every build, e.g. `HTTPS_PROXY: ${HTTPS_PROXY:-}` (empty values are left out). */
  buildEnv?: Record<string, string>;
  /** Start layer 1 only once `min` host agents registered (default 1), waiting at most `timeoutMs` (default 60000). */
  waitHosts?: { min?: number; timeoutMs?: number };
  controller?: {
    port?: number;
    store?: ManifestStore;
    /** PEM certificate and key files replacing the self-signed certificate kept in the data dir. */
    tls?: { cert: string; key: string };
    /** Serve plain HTTP (warned; the key and env cross the network in clear). Default false. */
    insecureHttp?: boolean;
  };
  router?: {
    port?: number;
    /** Run the router as a detached process that serves on while layer 1 is down (needs `dataDir`; see `PlatformOptions.detachedRouter`). Default false. */
    detached?: boolean;
    /** With `detached`: closing layer 1 leaves the router running. Default false. */
    keepOnClose?: boolean;
    /** The data plane: `node` (default) or `haproxy` (see `PlatformOptions.routerEngine`). */
    engine?: 'node' | 'haproxy';
    /** One line per request, `json` (default) or `combined`, appended to `file` (default `<dataDir>/router-access.log`, stdout without a `dataDir`; `-`: stdout). Off unless given (`accessLog: {}` turns it on). */
    accessLog?: { format?: 'json' | 'combined'; file?: string };
    /** Prometheus metrics at `GET /metrics` on `host` (default `listen`) and `port` (0: any free one). Off unless given. */
    metrics?: { host?: string; port: number };
  };
  git?: { port?: number };
  shelf?: { port?: number };
  /** Extra labels on every build container. */
  labels?: Record<string, string>;
  /** A `flynn cluster backup` tar to start from, restored into `dataDir` (required, fresh) and the (empty) store. */
  fromBackup?: string;
}

export type ManifestFormat = 'json' | 'yaml';

export interface ManifestOptions {
  /** Default: by the text (`{` first: JSON, else YAML); `loadManifest` goes by the file extension. */
  format?: ManifestFormat;
  /** Values for `${VAR}` (and `${VAR:-default}`; `$$` is a literal `$`). Default `process.env`. */
  env?: Record<string, string | undefined>;
  /** Where the text came from, for messages (e.g. the file path). */
  source?: string;
}

export interface ValidateManifestOptions {
  /** Replace `${VAR}` in strings from `env`. Default true; `bootstrap()` re-checks a parsed manifest with false. */
  interpolate?: boolean;
  env?: Record<string, string | undefined>;
  source?: string;
}

// A tiny checker: each check returns the (interpolated) value or records a problem and returns undefined.
interface Ctx {
  problems: ManifestProblem[];
  env: Record<string, string | undefined> | undefined;
}
type Check = (value: unknown, path: string, ctx: Ctx) => unknown;

const shown = (v: unknown): string => (v === undefined ? 'nothing' : JSON.stringify(v));
const fail = (ctx: Ctx, field: string, message: string): undefined => {
  ctx.problems.push({ field, message: `${field} ${message}` });
  return undefined;
};

function interpolate(text: string, path: string, ctx: Ctx): string | undefined {
  const env = ctx.env;
  if (env === undefined) return text;
  let ok = true;
  const out = text.replace(/\$\$|\$\{([^}]*)\}/g, (whole, inner: string | undefined) => {
    if (whole === '$$') return '$';
    const m = /^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$/s.exec(inner ?? '');
    if (!m) {
      ok = false;
      fail(ctx, path, `has a bad reference ${whole}: write \${NAME} or \${NAME:-default}`);
      return whole;
    }
    const value = env[m[1] as string];
    if (value !== undefined && value !== '') return value;
    if (m[2] !== undefined) return m[2];
    ok = false;
    fail(ctx, path, `refers to the environment variable ${m[1]}, which is not set`);
    return whole;
  });
  return ok ? out : undefined;
}

const str =
  (test?: { re: RegExp; want: string }): Check =>
  (v, path, ctx) => {
    if (typeof v !== 'string' || v === '') return fail(ctx, path, `must be a non-empty string, got ${shown(v)}`);
    const s = interpolate(v, path, ctx);
    if (s !== undefined && test && !test.re.test(s)) return fail(ctx, path, `must be ${test.want}, got ${shown(s)}`);
    return s;
  };
const url = str({ re: /^https?:\/\/[^/\s]+/, want: 'an http(s) URL' });
const int =
  (min: number, max = Number.MAX_SAFE_INTEGER): Check =>
  (v, path, ctx) =>
    typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? v : fail(ctx, path, `must be ${max === 65535 ? `${min}-${max}` : `an integer ≥ ${min}`}, got ${shown(v)}`);
const port = int(0, 65535);
const bool: Check = (v, path, ctx) => (typeof v === 'boolean' ? v : fail(ctx, path, `must be true or false, got ${shown(v)}`));
const oneOf =
  (values: readonly string[], why = ''): Check =>
  (v, path, ctx) =>
    typeof v === 'string' && values.includes(v) ? v : fail(ctx, path, `must be ${values.join(', ').replace(/, ([^,]*)$/, ' or $1')}${why}, got ${shown(v)}`);
const list =
  (item: Check): Check =>
  (v, path, ctx) => {
    if (!Array.isArray(v) || v.length === 0) return fail(ctx, path, `must be a non-empty list, got ${shown(v)}`);
    const out = v.map((x, i) => item(x, `${path}[${i}]`, ctx));
    return out.every((x) => x !== undefined) ? out : undefined;
  };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function record(item: Check): Check {
  return (v, path, ctx) => {
    if (!isObject(v)) return fail(ctx, path, `must be a mapping, got ${shown(v)}`);
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, item(x, `${path}.${k}`, ctx)]));
  };
}

/** An object with exactly these keys (`!` after a key: required). */
function obj(fields: Record<string, Check>): Check {
  const spec = Object.entries(fields).map(([k, check]) => ({ key: k.replace(/!$/, ''), required: k.endsWith('!'), check }));
  return (v, path, ctx) => {
    if (!isObject(v)) {
      if (path) return fail(ctx, path, `must be a mapping, got ${shown(v)}`);
      ctx.problems.push({ field: '', message: `the manifest must be a mapping (key: value), got ${shown(v)}` });
      return undefined;
    }
    const at = (k: string) => (path ? `${path}.${k}` : k);
    const known = spec.map((s) => s.key);
    for (const k of Object.keys(v)) if (!known.includes(k)) fail(ctx, at(k), `is not a known key (${path ? `${path} takes` : 'known keys:'} ${known.join(', ')})`);
    const out: Record<string, unknown> = {};
    for (const s of spec) {
      if (v[s.key] === undefined || v[s.key] === null) {
        if (s.required) fail(ctx, at(s.key), 'is required');
        continue;
      }
      const got = s.check(v[s.key], at(s.key), ctx);
      if (got !== undefined) out[s.key] = got;
    }
    return out;
  };
}

/** An object whose keys depend on its `backend`. */
function byBackend(variants: Record<string, Record<string, Check>>, why = ''): Check {
  const checks = Object.fromEntries(Object.entries(variants).map(([b, fields]) => [b, obj({ 'backend!': oneOf([b]), ...fields })]));
  return (v, path, ctx) => {
    if (!isObject(v)) return fail(ctx, path, `must be a mapping, got ${shown(v)}`);
    const backend = oneOf(Object.keys(variants), why)(v.backend, `${path}.backend`, ctx) as string | undefined;
    return backend === undefined ? undefined : (checks[backend] as Check)(v, path, ctx);
  };
}

const endpoints = list(url);
const address = str({ re: /^[A-Za-z0-9.:-]+$/, want: 'an address to listen on (e.g. 127.0.0.1)' });
const etcdAuth = { tls: obj({ ca: str(), cert: str(), key: str() }), username: str(), password: str() };
const manifestCheck = obj({
  'discovery!': byBackend(
    {
      etcd: { 'endpoints!': endpoints, prefix: str({ re: /^\//, want: 'a key prefix starting with /' }), timeoutMs: int(1), ...etcdAuth },
      http: { 'url!': url, timeoutMs: int(1) },
    },
    ' (memory discovery cannot see host agents started elsewhere)',
  ),
  dataDir: str(),
  listen: address,
  domain: str({ re: /^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$/, want: 'a domain name' }),
  key: str(),
  build: oneOf(['auto', 'docker', 'process']),
  image: str(),
  buildNetwork: oneOf(['none', 'bridge', 'host']),
  buildEnv: record(str()),
  waitHosts: obj({ min: int(0), timeoutMs: int(1) }),
  controller: obj({ port, store: byBackend({ memory: {}, etcd: { endpoints, prefix: str(), ...etcdAuth } }), tls: obj({ 'cert!': str(), 'key!': str() }), insecureHttp: bool }),
  router: obj({
    port,
    detached: bool,
    keepOnClose: bool,
    engine: oneOf(['node', 'haproxy']),
    accessLog: obj({ format: oneOf(['json', 'combined']), file: str() }),
    metrics: obj({ host: address, 'port!': port }),
  }),
  git: obj({ port }),
  shelf: obj({ port }),
  labels: record(str()),
  fromBackup: str(),
});

/** Check a manifest object (e.g. parsed by hand) strictly; throws a {@link BootstrapManifestError} listing every problem. */
export function validateManifest(value: unknown, options: ValidateManifestOptions = {}): BootstrapManifest {
  const ctx: Ctx = { problems: [], env: options.interpolate === false ? undefined : (options.env ?? process.env) };
  const out = manifestCheck(value, '', ctx) as BootstrapManifest | undefined;
  const store = out?.controller?.store;
  if (out?.discovery && out.discovery.backend !== 'etcd' && store?.backend === 'etcd' && !store.endpoints) {
    fail(ctx, 'controller.store.endpoints', 'is required when discovery is not etcd');
  }
  if (out?.controller?.tls !== undefined && out.controller.insecureHttp === true) fail(ctx, 'controller.insecureHttp', 'cannot be true with controller.tls (a certificate is for HTTPS)');
  if (ctx.problems.length > 0 || out === undefined) throw new BootstrapManifestError(ctx.problems, options.source === undefined ? {} : { source: options.source });
  return out;
}

function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset).split('\n');
  return { line: before.length, column: (before.at(-1)?.length ?? 0) + 1 };
}

function parseText(text: string, format: ManifestFormat, source: string | undefined): unknown {
  const where = source === undefined ? {} : { source };
  if (format === 'json') {
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      const msg = (err as Error).message;
      const lc = /line (\d+) column (\d+)/.exec(msg);
      const pos = /position (\d+)/.exec(msg);
      const at = lc ? { line: Number(lc[1]), column: Number(lc[2]) } : pos ? lineColumn(text, Number(pos[1])) : undefined;
      throw new BootstrapManifestError([{ field: '', message: `JSON syntax error${at ? ` at line ${at.line}, column ${at.column}` : ''}: ${msg}` }], { ...where, ...at });
    }
  }
  try {
    return parseYaml(text, { prettyErrors: true, uniqueKeys: true }) as unknown;
  } catch (err) {
    if (!(err instanceof YAMLParseError)) throw err;
    const at = err.linePos?.[0];
    const first = err.message.split('\n')[0] ?? err.message;
    throw new BootstrapManifestError([{ field: '', message: `YAML syntax error${at ? ` at line ${at.line}, column ${at.col}` : ''}: ${first.replace(/ at line \d+, column \d+:?$/, '')}` }], {
      ...where,
      ...(at ? { line: at.line, column: at.col } : {}),
    });
  }
}

/** Parse and check a manifest from JSON or YAML text. */
export function parseManifest(text: string, options: ManifestOptions = {}): BootstrapManifest {
  const format = options.format ?? (text.trimStart().startsWith('{') ? 'json' : 'yaml');
  if (format !== 'json' && format !== 'yaml') throw new BootstrapManifestError([{ field: '', message: `format must be json or yaml, got ${shown(format)}` }], {});
  const value = parseText(text, format, options.source);
  return validateManifest(value, { ...(options.env ? { env: options.env } : {}), ...(options.source === undefined ? {} : { source: options.source }) });
}

/** Read a manifest file: `.json` is JSON, anything else YAML. */
export async function loadManifest(path: string, options: Omit<ManifestOptions, 'source'> = {}): Promise<BootstrapManifest> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new BootstrapManifestError([{ field: '', message: `cannot read ${path}: ${(err as Error).message}` }], {});
  }
  return parseManifest(text, { format: options.format ?? (extname(path).toLowerCase() === '.json' ? 'json' : 'yaml'), source: path, ...(options.env ? { env: options.env } : {}) });
}
