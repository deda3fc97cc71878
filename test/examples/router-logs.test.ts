/**
 * The router's access log and metrics, turned on by flags alone: `npm start --router-access-log json
 * --router-metrics-port 0` (process runtime, a data dir, the detached router) prints the metrics URL
 * in its banner; requests through the router show as lines of `<dataDir>/router-access.log` (0600)
 * and as counts on `/metrics`. The router process started again after a SIGKILL keeps both: the same
 * metrics port, and lines appended to the same file; so does the one started from its saved config
 * after every flynn-ts process was killed. On the node engine, and on the haproxy engine
 * when HAProxy is installed (its metrics are HAProxy's own exporter's).
 */
import { mkdtemp, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { findRouter } from '../../src/bootstrap/router-process.js';
import { pinOf } from '../../src/common/tls/self-signed.js';
import { ControllerClient } from '../../src/controller/client.js';
import { endNpmStart, npmStartPorts, serving, startNpmStart, type Running } from '../support/npm-start.js';
import { needHaproxy } from '../support/services.js';

const HOSTS = { node: '127.0.0.49', haproxy: '127.0.0.54' };
const APP = 'logged';
const WEB = ['node', '-e', `require('http').createServer((q, s) => s.end('up')).listen(Number(process.env.PORT))`];

async function accessLog(dataDir: string): Promise<Record<string, unknown>[]> {
  const text = await readFile(join(dataDir, 'router-access.log'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/**
 * The 2xx answers counted on the metrics page: the node engine's `flynn_router_requests_total` of
 * the route, HAProxy's `haproxy_backend_http_responses_total` of every backend (the app's is the only one).
 */
async function served(metricsUrl: string, engine: 'node' | 'haproxy', route: string): Promise<number> {
  const text = await (await request(metricsUrl)).body.text();
  const re = engine === 'node' ? new RegExp(`^flynn_router_requests_total\\{route="${route}",code="2xx"\\} (\\d+)$`, 'gm') : /^haproxy_backend_http_responses_total\{[^}]*code="2xx"[^}]*\} (\d+)$/gm;
  return [...text.matchAll(re)].reduce((sum, m) => sum + Number(m[1]), 0);
}

async function eventually<T>(get: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await get();
    if (ok(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

const engines = [['node', true] as const, ['haproxy', await needHaproxy('npm start --router-engine haproxy with an access log and metrics')] as const];

describe.each(engines.filter(([, on]) => on).map(([engine]) => engine))('npm start: the router access log and metrics from flags (%s engine)', (engine) => {
  const HOST = HOSTS[engine];
  let dataDir = '';
  let running: Running | undefined;
  afterAll(() => endNpmStart(running, dataDir), 60_000);

  it('logs each request to <dataDir>/router-access.log and counts it on /metrics, also after the router process is started again', async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'flynn-ts-router-logs-'));
    const { ports, flags, routerUrl } = await npmStartPorts(HOST);
    const args = ['--runtime', 'process', '--router-engine', engine, '--data-dir', dataDir, '--router-metrics-port', '0', ...flags];
    // The format from the env twin.
    running = await startNpmStart(args, { env: { FLYNN_ROUTER_ACCESS_LOG: 'json' } });
    const metricsUrl = /metrics\s+(http:\/\/\S+\/metrics)/.exec(running.stdout())?.[1] ?? '';
    expect(metricsUrl).toMatch(new RegExp(`^http://${HOST.replaceAll('.', '\\.')}:\\d+/metrics$`));
    expect(running.stdout()).toContain(`access log  ${join(dataDir, 'router-access.log')}`);

    const key = (await readFile(join(dataDir, 'controller-key'), 'utf8')).trim();
    const pin = pinOf(await readFile(join(dataDir, 'controller-tls.crt'), 'utf8'));
    const client = new ControllerClient({ url: `https://${HOST}:${ports.controller}`, key, tls: { pin } });
    await client.createApp({ name: APP });
    const release = await client.createRelease(APP, { processes: { web: { cmd: WEB } } });
    await client.waitForDeployment(APP, (await client.deploy(APP, release.id)).id, { timeoutMs: 60_000 });
    const route = await client.createRoute(APP, { type: 'http', domain: `${APP}.flynn.local`, service: `${APP}-web` });
    await client.close();
    await serving(routerUrl, `${APP}.flynn.local`);

    const before = await served(metricsUrl, engine, route.id);
    for (let i = 0; i < 5; i++) {
      const res = await request(`${routerUrl}/hit/${i}?q=1`, { headers: { host: `${APP}.flynn.local`, 'user-agent': 'router-logs-test' } });
      expect(res.statusCode).toBe(200);
      await res.body.text();
    }
    expect(await eventually(() => served(metricsUrl, engine, route.id), (n) => n === before + 5)).toBe(before + 5);
    const lines = await eventually(() => accessLog(dataDir), (l) => l.filter((e) => e.userAgent === 'router-logs-test').length === 5);
    const hits = lines.filter((e) => e.userAgent === 'router-logs-test');
    expect(hits.map((e) => e.url)).toEqual([0, 1, 2, 3, 4].map((i) => `/hit/${i}?q=1`));
    expect(hits[0]).toMatchObject({ method: 'GET', host: `${APP}.flynn.local`, status: 200, service: `${APP}-web` });
    expect((await stat(join(dataDir, 'router-access.log'))).mode & 0o777).toBe(0o600);

    // The router process started again by the platform logs and counts on the same file and port.
    const router = await findRouter(dataDir);
    expect(router?.metrics?.url).toBe(metricsUrl.replace(/\/metrics$/, ''));
    process.kill(router?.pid as number, 'SIGKILL');
    await eventually(() => findRouter(dataDir), (s) => s !== null && s.pid !== router?.pid, 20_000);
    await serving(routerUrl, `${APP}.flynn.local`, 20_000);
    const again = await request(`${routerUrl}/after-respawn`, { headers: { host: `${APP}.flynn.local`, 'user-agent': 'router-logs-test' } });
    expect(again.statusCode).toBe(200);
    await again.body.text();
    expect((await findRouter(dataDir))?.metrics?.url).toBe(metricsUrl.replace(/\/metrics$/, ''));
    expect(await eventually(() => served(metricsUrl, engine, route.id), (n) => n >= 1)).toBeGreaterThanOrEqual(1);
    const after = await eventually(() => accessLog(dataDir), (l) => l.some((e) => e.url === '/after-respawn'));
    expect(after.some((e) => e.url === '/after-respawn')).toBe(true);
    expect(after.filter((e) => e.userAgent === 'router-logs-test')).toHaveLength(6);

    // Every flynn-ts process killed: the router started again from its saved config, before the
    // platform loads, logs and counts as well; the platform re-attaches to it and prints its metrics URL.
    const last = await findRouter(dataDir);
    running.proc.kill('SIGKILL');
    process.kill(last?.pid as number, 'SIGKILL');
    await running.exited;
    running = await startNpmStart(args, { env: { FLYNN_ROUTER_ACCESS_LOG: 'json' } });
    expect(running.stdout()).toContain(`metrics     ${metricsUrl}`);
    await serving(routerUrl, `${APP}.flynn.local`, 30_000);
    const third = await request(`${routerUrl}/after-restart`, { headers: { host: `${APP}.flynn.local`, 'user-agent': 'router-logs-test' } });
    expect(third.statusCode).toBe(200);
    await third.body.text();
    expect(await eventually(() => served(metricsUrl, engine, route.id), (n) => n >= 1)).toBeGreaterThanOrEqual(1);
    const restarted = await eventually(() => accessLog(dataDir), (l) => l.some((e) => e.url === '/after-restart'));
    expect(restarted.filter((e) => e.userAgent === 'router-logs-test')).toHaveLength(7);
  }, 180_000);
});
