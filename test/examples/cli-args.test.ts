import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Etcd3 } from 'etcd3';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { stopRouterProcess } from '../../src/bootstrap/router-process.js';
import { etcdEndpoints, needEtcd } from '../support/services.js';

// `--import tsx` resolves from the cwd; point at the loader itself (as test/cli/cli.test.ts does).
const TSX = pathToFileURL(resolve('node_modules/tsx/dist/loader.mjs')).href;
const main = (bin: string) => resolve(`examples/${bin}/main.ts`);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** What `whileUp` returned (or threw). */
  up?: unknown;
}

/** Run an example binary to its exit (SIGKILL after `timeoutMs`, which the test then sees). */
function run(
  bin: string,
  args: string[],
  options: { env?: Record<string, string>; timeoutMs?: number; until?: string; whileUp?: (stdout: string) => Promise<unknown> } = {},
): Promise<Run> {
  return new Promise((done, fail) => {
    const proc = spawn(process.execPath, ['--import', TSX, main(bin), ...args], { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let up: unknown;
    let seen = false;
    proc.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
      // A long-running binary is looked at (`whileUp`) once it printed `until`, then stopped with SIGTERM.
      if (seen || options.until === undefined || !stdout.includes(options.until)) return;
      seen = true;
      void (options.whileUp?.(stdout) ?? Promise.resolve())
        .then(
          (v: unknown) => (up = v),
          (e: unknown) => (up = e),
        )
        .finally(() => proc.kill('SIGTERM'));
    });
    proc.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => proc.kill('SIGKILL'), options.timeoutMs ?? 20_000);
    proc.once('error', fail);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      done({ code, stdout, stderr, up });
    });
  });
}

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
});
function occupy(host: string): Promise<number> {
  const server = createServer();
  servers.push(server);
  return new Promise((ok, ko) => {
    server.once('error', ko);
    server.listen(0, host, () => ok((server.address() as AddressInfo).port));
  });
}

describe('npm start (examples/cluster) on a busy port', () => {
  it('exits 1 with one line naming the router, its address and --router-port, and no stack', async () => {
    const port = await occupy('127.0.0.4');
    const r = await run('cluster', ['--host', '127.0.0.4', '--runtime', 'process', '--ephemeral', '--router-port', String(port), '--controller-port', '0', '--git-port', '0', '--shelf-port', '0']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([
      `flynn-ts: the router cannot listen on 127.0.0.4:${port}: the port is in use (another cluster?). Pick another with --router-port N (0 = any free port)`,
    ]);
  });

  it('names the shelf and --shelf-port when the busy port comes from FLYNN_SHELF_PORT', async () => {
    const port = await occupy('127.0.0.4');
    const r = await run('cluster', ['--host', '127.0.0.4', '--runtime', 'process', '--ephemeral', '--router-port', '0', '--controller-port', '0', '--git-port', '0'], { env: { FLYNN_SHELF_PORT: String(port) } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`flynn-ts: the shelf cannot listen on 127.0.0.4:${port}: the port is in use`);
    expect(r.stderr).toContain('--shelf-port N');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('names the router metrics listener and --router-metrics-port when that port is busy (inline router)', async () => {
    const port = await occupy('127.0.0.4');
    const r = await run('cluster', ['--host', '127.0.0.4', '--runtime', 'process', '--ephemeral', '--router-port', '0', '--controller-port', '0', '--git-port', '0', '--shelf-port', '0', '--router-metrics-port', String(port)]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([
      `flynn-ts: the router metrics listener cannot listen on 127.0.0.4:${port}: the port is in use (another cluster?). Pick another with --router-metrics-port N (0 = any free port)`,
    ]);
  });
});

describe('--help and bad flags', () => {
  it('npm start -- --help lists every flag with its env twin and default, and exits 0', async () => {
    const r = await run('cluster', ['--help']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    for (const line of [
      /--router-port N .*env FLYNN_ROUTER_PORT, default 8080/,
      /--controller-port N .*env FLYNN_CONTROLLER_PORT, default 8081/,
      /--git-port N .*env FLYNN_GIT_PORT, default 2222/,
      /--shelf-port N .*env FLYNN_SHELF_PORT, default 8082/,
      /--data-dir DIR .*env FLYNN_DATA_DIR/,
      /--ephemeral .*env FLYNN_EPHEMERAL/,
      /--stop-apps-on-exit .*env FLYNN_STOP_APPS_ON_EXIT/,
      /--etcd-prefix PREFIX .*env FLYNN_ETCD_PREFIX, default \/flynn-ts/,
      /--router-access-log json\|combined .*env FLYNN_ROUTER_ACCESS_LOG\)/,
      /--router-access-log-file FILE .*env FLYNN_ROUTER_ACCESS_LOG_FILE\)/,
      /--router-metrics-port N .*env FLYNN_ROUTER_METRICS_PORT\)/,
      /-h, --help/,
    ]) {
      expect(r.stdout).toMatch(line);
    }
  });

  for (const bin of ['cluster', 'bootstrap', 'platform', 'host', 'shelf', 'images']) {
    it(`examples/${bin} answers an unknown flag with one line and the usage, exit 2`, async () => {
      const r = await run(bin, ['--no-such-flag']);
      expect(r.code).toBe(2);
      const [first, second] = r.stderr.split('\n');
      expect(first).toMatch(/^[a-z-]+: unknown flag --no-such-flag$/);
      expect(second).toMatch(/^usage: /);
      expect(r.stderr).not.toMatch(/ERR_PARSE_ARGS|\n\s+at /);
    });
  }

  it('examples/bootstrap --help exits 0 with its usage', async () => {
    const r = await run('bootstrap', ['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^usage: npm run bootstrap -- MANIFEST/);
    expect(r.stdout).toContain('--json');
  });

  it('a flag without its value or a bad port is one line, exit 2', async () => {
    const missing = await run('cluster', ['--router-port']);
    expect(missing.code).toBe(2);
    expect(missing.stderr.split('\n')[0]).toBe('flynn-ts: --router-port needs a value: --router-port N');
    const both = await run('cluster', ['--ephemeral', '--data-dir', '/tmp/x']);
    expect(both.code).toBe(2);
    expect(both.stderr.trim()).toBe('flynn-ts: --ephemeral and --data-dir exclude each other (see --help)');
    const bad = await run('cluster', ['--git-port', '70000']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toBe('flynn-ts: --git-port must be a port (0-65535, 0 = any free port), got "70000" (see --help)');
  });

  it('a bad --router-access-log or --router-metrics-port is one line, exit 2 (npm start, examples/platform, examples/router)', async () => {
    const format = await run('cluster', ['--router-access-log', 'apache']);
    expect(format.code).toBe(2);
    expect(format.stderr.split('\n')[0]).toMatch(/^flynn-ts: --router-access-log must be json, combined; got "apache"/);
    const port = await run('platform', ['--router-metrics-port', 'x'], { env: { CONTROLLER_KEY: 'k' } });
    expect(port.code).toBe(2);
    expect(port.stderr.split('\n')[0]).toBe('platform: --router-metrics-port must be a port (0-65535, 0 = any free port), got "x" (see --help)');
    const env = await run('router', [], { env: { ROUTER_ACCESS_LOG: 'xml' } });
    expect(env.code).toBe(2);
    expect(env.stderr.split('\n')[0]).toMatch(/^router: ROUTER_ACCESS_LOG must be json, combined; got "xml"/);
  });
});

describe.runIf(await needEtcd('npm start with --discovery etcd --etcd-prefix'))('npm start with etcd discovery', () => {
  it('registers its host agent under --etcd-prefix, not the default /flynn-ts', async () => {
    const prefix = `/flynn-ts-test/clusterux-${randomUUID().slice(0, 8)}`;
    const etcd = new Etcd3({ hosts: etcdEndpoints });
    try {
      const r = await run(
        'cluster',
        ['--host', '127.0.0.5', '--runtime', 'process', '--ephemeral', '--discovery', 'etcd', '--etcd-prefix', prefix, '--router-port', '0', '--controller-port', '0', '--git-port', '0', '--shelf-port', '0'],
        { env: { ETCD_ENDPOINTS: etcdEndpoints.join(',') }, timeoutMs: 60_000, until: 'flynn-ts cluster up', whileUp: () => etcd.getAll().prefix(`${prefix}/`).keys() },
      );
      expect(r.stdout).toContain('flynn-ts cluster up');
      expect(r.code).toBe(0);
      // While it was up, its registrations (the host agent's among them) were under the prefix.
      expect(r.up).toEqual(expect.arrayContaining([expect.stringMatching(new RegExp(`^${prefix}/services/flynn-host/`))]));
    } finally {
      await etcd.delete().prefix(`${prefix}/`);
      etcd.close();
    }
  }, 90_000);
});

describe.runIf(await needEtcd('examples/platform with the router access log and metrics flags'))('examples/platform: router access log and metrics from flags', () => {
  it('names the metrics URL and the access log file in its --json ready line; the detached router writes the file', async () => {
    const prefix = `/flynn-ts-test/platform-logs-${randomUUID().slice(0, 8)}`;
    const dataDir = await mkdtemp(join(tmpdir(), 'flynn-ts-platform-logs-'));
    const etcd = new Etcd3({ hosts: etcdEndpoints });
    try {
      const r = await run(
        'platform',
        ['--etcd', etcdEndpoints.join(','), '--prefix', prefix, '--host', '127.0.0.55', '--build', 'process', '--data-dir', dataDir, '--router-port', '0', '--controller-port', '0', '--git-port', '0', '--shelf-port', '0', '--router-metrics-port', '0', '--json'],
        {
          env: { CONTROLLER_KEY: 'platform-logs-key', FLYNN_ROUTER_ACCESS_LOG: 'combined' },
          // Generous: on a loaded machine the platform's start alone has taken a minute.
          timeoutMs: 100_000,
          until: '"step":"server-add"',
          whileUp: async (stdout) => {
            const ready = JSON.parse(stdout.split('\n').find((l) => l.includes('"step":"ready"')) ?? '{}') as { routerUrl: string; routerMetricsUrl?: string; routerAccessLog?: string };
            const res = await request(`${ready.routerUrl}/nowhere`, { headers: { host: 'nowhere.flynn.local' } });
            await res.body.text();
            const metrics = await (await request(ready.routerMetricsUrl ?? '')).body.text();
            // The router writes the line once the answer ends: wait for it to reach the file (up to 10 s: a loaded machine).
            const logged = () => readFile(join(dataDir, 'router-access.log'), 'utf8').catch(() => '');
            for (const deadline = Date.now() + 10_000; !(await logged()).includes('/nowhere') && Date.now() < deadline; ) await new Promise((s) => setTimeout(s, 20));
            return { ready, metrics, log: await logged() };
          },
        },
      );
      const up = r.up as { ready: { routerMetricsUrl?: string; routerAccessLog?: string }; metrics: string; log: string };
      expect(up.ready.routerMetricsUrl).toMatch(/^http:\/\/127\.0\.0\.55:\d+\/metrics$/);
      expect(up.ready.routerAccessLog).toBe(join(dataDir, 'router-access.log'));
      expect(up.metrics).toMatch(/^flynn_router_requests_total\{route="-",code="4xx"\} 1$/m);
      expect(up.log).toMatch(/^127\.0\.0\.1 - - \[[^\]]+\] "GET \/nowhere HTTP\/1\.1" 404 \d+ "-" "-"$/m);
    } finally {
      await stopRouterProcess(dataDir);
      await rm(dataDir, { recursive: true, force: true });
      await etcd.delete().prefix(`${prefix}/`);
      etcd.close();
    }
  }, 120_000);
});
