import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootstrap, BootstrapErrorCodes, BootstrapManifestError, loadManifest, parseManifest, startPlatform, validateManifest, type BootstrapManifest } from '../../src/bootstrap/index.js';
import { planPlatform } from '../../src/bootstrap/platform.js';

const ETCD = 'discovery:\n  backend: etcd\n  endpoints: [http://127.0.0.1:2379]\n';

/** The error `parseManifest` throws for `text`. */
function rejection(text: string, options: Parameters<typeof parseManifest>[1] = {}): BootstrapManifestError {
  try {
    parseManifest(text, { env: {}, ...options });
  } catch (err) {
    expect(err).toBeInstanceOf(BootstrapManifestError);
    expect((err as BootstrapManifestError).code).toBe(BootstrapErrorCodes.INVALID_MANIFEST);
    return err as BootstrapManifestError;
  }
  throw new Error(`accepted: ${text}`);
}

describe('bootstrap manifest', () => {
  it('parses a full YAML manifest with ${VAR} taken from the environment', () => {
    const m = parseManifest(
      `${ETCD}  prefix: /p\n  timeoutMs: 2000\nkey: \${CONTROLLER_KEY}\ndataDir: \${DATA:-/var/lib/flynn}\nlisten: 127.0.0.1\ndomain: example.test\nbuild: process\nwaitHosts: {min: 3, timeoutMs: 1000}\ncontroller:\n  port: 0\n  store: {backend: memory}\nrouter: {port: 8080}\ngit: {port: 2222}\nshelf: {port: 8082}\nlabels: {team: "a$$b"}\n`,
      { env: { CONTROLLER_KEY: 's3cret' } },
    );
    expect(m).toEqual({
      discovery: { backend: 'etcd', endpoints: ['http://127.0.0.1:2379'], prefix: '/p', timeoutMs: 2000 },
      key: 's3cret',
      dataDir: '/var/lib/flynn',
      listen: '127.0.0.1',
      domain: 'example.test',
      build: 'process',
      waitHosts: { min: 3, timeoutMs: 1000 },
      controller: { port: 0, store: { backend: 'memory' } },
      router: { port: 8080 },
      git: { port: 2222 },
      shelf: { port: 8082 },
      labels: { team: 'a$b' },
    });
  });

  it('accepts the commented sample manifest of examples/bootstrap', async () => {
    const m = await loadManifest('examples/bootstrap/manifest.yaml', { env: { CONTROLLER_KEY: 'k' } });
    expect(m).toMatchObject({ discovery: { backend: 'etcd', endpoints: ['http://127.0.0.1:2379'], prefix: '/flynn-ts' }, key: 'k', dataDir: '/tmp/flynn-ts-platform', waitHosts: { min: 1 } });
    await expect(loadManifest('examples/bootstrap/manifest.yaml', { env: {} })).rejects.toThrow('key refers to the environment variable CONTROLLER_KEY, which is not set');
  });

  it('parses JSON, chosen by the text or by a .json file name', async () => {
    const json = JSON.stringify({ discovery: { backend: 'http', url: 'http://127.0.0.1:1111' }, router: { port: 0 } });
    expect(parseManifest(json)).toEqual({ discovery: { backend: 'http', url: 'http://127.0.0.1:1111' }, router: { port: 0 } });
    const dir = await mkdtemp(join(tmpdir(), 'flynn-ts-manifest-'));
    try {
      await writeFile(join(dir, 'm.json'), ` ${json}`);
      expect((await loadManifest(join(dir, 'm.json'))).router).toEqual({ port: 0 });
      await writeFile(join(dir, 'bad.json'), '{"discovery": {"backend": "etcd",\n  }}');
      await expect(loadManifest(join(dir, 'bad.json'))).rejects.toMatchObject({ code: BootstrapErrorCodes.INVALID_MANIFEST, detail: { line: 2, source: join(dir, 'bad.json') } });
      await expect(loadManifest(join(dir, 'missing.yaml'))).rejects.toThrow(/cannot read .*missing\.yaml/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('names the line and column of a YAML syntax error', () => {
    const err = rejection(`${ETCD}router:\n  port: 1\n bad: 2\n`, { source: 'cluster.yaml' });
    expect(err.message).toBe('invalid bootstrap manifest cluster.yaml: YAML syntax error at line 6, column 1: All mapping items must start at the same column');
    expect(err.detail).toMatchObject({ line: 6, column: 1, source: 'cluster.yaml' });
    expect(rejection(`${ETCD}router: {port: 1}}\n`).message).toContain('at line 4, column 18');
    expect(rejection(`${ETCD}router: {port: 1}\nrouter: {port: 2}\n`).message).toMatch(/line 5, column 1: Map keys must be unique/);
  });

  it('refuses unknown keys, naming their path and the known ones', () => {
    const err = rejection(`${ETCD}controller:\n  prot: 8081\nrouterr: {port: 1}\n`);
    expect(err.problems.map((p) => p.field)).toEqual(['routerr', 'controller.prot']);
    expect(err.message).toContain('controller.prot is not a known key (controller takes port, store, tls, insecureHttp)');
    expect(err.message).toContain('routerr is not a known key (known keys: discovery, dataDir,');
    expect(rejection(`${ETCD}  endpoint: http://x\n`).message).toContain('discovery.endpoint is not a known key');
  });

  it('takes the controller certificate and etcd credentials, and refuses a certificate with insecureHttp', () => {
    const m = parseManifest(`${ETCD}  tls: {ca: /e/ca.crt, cert: /e/c.crt, key: /e/c.key}\n  username: flynn\n  password: \${ETCD_PASSWORD}\ncontroller:\n  tls: {cert: /c.crt, key: /c.key}\n`, { env: { ETCD_PASSWORD: 'pw' } });
    expect(m.discovery).toMatchObject({ tls: { ca: '/e/ca.crt', cert: '/e/c.crt', key: '/e/c.key' }, username: 'flynn', password: 'pw' });
    expect(m.controller?.tls).toEqual({ cert: '/c.crt', key: '/c.key' });
    expect(rejection(`${ETCD}controller:\n  tls: {cert: /c.crt, key: /c.key}\n  insecureHttp: true\n`).message).toContain('controller.insecureHttp cannot be true with controller.tls');
    expect(rejection(`${ETCD}controller:\n  insecureHttp: yes please\n`).message).toContain('controller.insecureHttp must be true or false');
  });

  it('refuses ports that are not 0-65535 and wrong types, naming the field', () => {
    expect(rejection(`${ETCD}controller: {port: "x"}\n`).message).toBe('invalid bootstrap manifest: controller.port must be 0-65535, got "x"');
    expect(rejection(`${ETCD}router: {port: 65536}\n`).message).toContain('router.port must be 0-65535, got 65536');
    expect(rejection(`${ETCD}shelf: {port: 1.5}\n`).message).toContain('shelf.port must be 0-65535, got 1.5');
    expect(rejection(`${ETCD}git: 2222\n`).message).toContain('git must be a mapping, got 2222');
    expect(rejection(`${ETCD}waitHosts: {min: -1}\n`).message).toContain('waitHosts.min must be an integer ≥ 0, got -1');
    expect(rejection(`${ETCD}labels: {a: 1}\n`).message).toContain('labels.a must be a non-empty string, got 1');
    expect(rejection('discovery:\n  backend: etcd\n  endpoints: [ftp://x]\n').message).toContain('discovery.endpoints[0] must be an http(s) URL, got "ftp://x"');
    expect(rejection('discovery: {backend: etcd}\n').message).toContain('discovery.endpoints is required');
    expect(rejection('router: {port: 1}\n').message).toContain('discovery is required');
    expect(rejection('- a\n').message).toContain('the manifest must be a mapping');
  });

  it('takes router.accessLog and router.metrics, and refuses bad ones naming the field', () => {
    expect(parseManifest(`${ETCD}router:\n  accessLog: {format: combined, file: "\${LOGS}/access.log"}\n  metrics: {port: 9100}\n`, { env: { LOGS: '/var/log/flynn' } }).router).toEqual({
      accessLog: { format: 'combined', file: '/var/log/flynn/access.log' },
      metrics: { port: 9100 },
    });
    expect(parseManifest(`${ETCD}router: {accessLog: {}, metrics: {host: 10.0.0.5, port: 0}}\n`).router).toEqual({ accessLog: {}, metrics: { host: '10.0.0.5', port: 0 } });
    expect(rejection(`${ETCD}router: {accessLog: {format: apache}}\n`).message).toBe('invalid bootstrap manifest: router.accessLog.format must be json or combined, got "apache"');
    expect(rejection(`${ETCD}router: {accessLog: {file: ""}}\n`).message).toContain('router.accessLog.file must be a non-empty string, got ""');
    expect(rejection(`${ETCD}router: {accessLog: json}\n`).message).toContain('router.accessLog must be a mapping, got "json"');
    expect(rejection(`${ETCD}router: {accessLog: {path: /x}}\n`).message).toContain('router.accessLog.path is not a known key (router.accessLog takes format, file)');
    expect(rejection(`${ETCD}router: {metrics: {}}\n`).message).toContain('router.metrics.port is required');
    expect(rejection(`${ETCD}router: {metrics: {port: 70000}}\n`).message).toContain('router.metrics.port must be 0-65535, got 70000');
    expect(rejection(`${ETCD}router: {metrics: {host: "a b", port: 1}}\n`).message).toContain('router.metrics.host must be an address to listen on (e.g. 127.0.0.1), got "a b"');
  });

  it("plans the router's access log in the data dir (stdout without one) and its metrics on the listen host", () => {
    expect(planPlatform({ dataDir: '/srv/flynn', routerAccessLog: {} }).routerAccessLog).toEqual({ format: 'json', file: '/srv/flynn/router-access.log' });
    expect(planPlatform({ routerAccessLog: { format: 'combined' } }).routerAccessLog).toEqual({ format: 'combined', file: null });
    expect(planPlatform({ dataDir: '/srv/flynn', routerAccessLog: { file: null } }).routerAccessLog).toEqual({ format: 'json', file: null });
    expect(planPlatform({ routerAccessLog: { file: 'rel/access.log' } }).routerAccessLog?.file).toBe(join(process.cwd(), 'rel/access.log'));
    expect(planPlatform({}).routerAccessLog).toBeUndefined();
    expect(planPlatform({ host: '127.0.0.9', routerMetrics: { port: 0 } }).routerMetrics).toEqual({ host: '127.0.0.9', port: 0 });
    expect(() => planPlatform({ routerAccessLog: { format: 'xml' as 'json' } })).toThrow('routerAccessLog.format must be json or combined, got "xml"');
    expect(() => planPlatform({ ports: { router: 9100 }, routerMetrics: { port: 9100 } })).toThrow('routerMetrics.port and ports.router are both 9100: each component needs its own port');
    expect(() => planPlatform({ routerMetrics: { port: -1 } })).toThrow('routerMetrics.port must be 0-65535, got -1');
    // On another address the same port is no conflict.
    expect(planPlatform({ ports: { router: 9100 }, routerMetrics: { host: '127.0.0.2', port: 9100 } }).routerMetrics).toEqual({ host: '127.0.0.2', port: 9100 });
  });

  it('lists every problem at once', () => {
    const err = rejection(`${ETCD}build: vm\ncontroller: {port: "x"}\n`);
    expect(err.problems).toEqual([
      { field: 'build', message: 'build must be auto, docker or process, got "vm"' },
      { field: 'controller.port', message: 'controller.port must be 0-65535, got "x"' },
    ]);
    expect(err.detail).toMatchObject({ field: 'build' });
  });

  it('refuses a ${VAR} that is not set, naming the field and the variable', () => {
    const err = rejection(`${ETCD}key: \${CONTROLLER_KEY}\n`, { env: { OTHER: 'x' } });
    expect(err.message).toBe('invalid bootstrap manifest: key refers to the environment variable CONTROLLER_KEY, which is not set');
    expect(err.detail).toMatchObject({ field: 'key' });
    expect(rejection(`${ETCD}key: \${CONTROLLER_KEY}\n`, { env: { CONTROLLER_KEY: '' } }).message).toContain('CONTROLLER_KEY, which is not set');
    expect(rejection(`${ETCD}key: "\${1BAD}"\n`).message).toContain('key has a bad reference ${1BAD}');
  });

  it('refuses a discovery backend other than etcd or http, and a store without endpoints off etcd', () => {
    expect(rejection('discovery: {backend: memory}\n').message).toContain('discovery.backend must be etcd or http (memory discovery cannot see host agents started elsewhere), got "memory"');
    expect(rejection('discovery: {backend: consul, url: x}\n').message).toContain('discovery.backend must be etcd or http');
    expect(rejection(`${ETCD}controller: {store: {backend: redis}}\n`).message).toContain('controller.store.backend must be memory or etcd, got "redis"');
    expect(rejection('discovery: {backend: http, url: "http://127.0.0.1:1111"}\ncontroller: {store: {backend: etcd}}\n').message).toContain('controller.store.endpoints is required when discovery is not etcd');
  });

  it('checks a hand-made manifest object without touching ${} when told not to interpolate', () => {
    const m = validateManifest({ discovery: { backend: 'etcd', endpoints: ['http://127.0.0.1:2379'] }, key: '${literal}' }, { interpolate: false });
    expect(m.key).toBe('${literal}');
    expect(() => validateManifest({ discovery: { backend: 'etcd', endpoints: ['http://127.0.0.1:2379'] }, extra: 1 })).toThrow(/extra is not a known key/);
  });

  it('bootstrap() and startPlatform() refuse bad input before starting anything', async () => {
    await expect(bootstrap({ discovery: { backend: 'memory' } } as unknown as BootstrapManifest)).rejects.toMatchObject({ code: BootstrapErrorCodes.INVALID_MANIFEST });
    await expect(startPlatform(undefined as never)).rejects.toMatchObject({ code: BootstrapErrorCodes.INVALID_OPTIONS, detail: { field: 'discovery' } });
  });
});

describe('bootstrap from a JSON manifest onto discovery that does not answer', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flynn-ts-manifest-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('fails within the discovery timeout with the address in the message', async () => {
    const steps: string[] = [];
    const err = await bootstrap(
      { discovery: { backend: 'http', url: 'http://127.0.0.1:1', timeoutMs: 1500 }, dataDir: dir, waitHosts: { min: 1, timeoutMs: 1000 } },
      { onStep: (s) => steps.push(s.step) },
    ).catch((e: unknown) => e as Error);
    expect(err).toMatchObject({ code: BootstrapErrorCodes.DISCOVERY_UNAVAILABLE });
    expect((err as Error).message).toMatch(/^discovery: discoverd at http:\/\/127\.0\.0\.1:1 (does not answer|did not answer within 1500 ms)/);
    expect(steps).toEqual([]);
  });
});
