/**
 * Restarts of `npm start` (examples/cluster/main.ts as a real process, Docker runtime, a data dir)
 * with one app (2 web containers) serving: the time from the SIGKILL to the app answering again
 * through the router, and the requests that failed meanwhile (a request loop runs throughout),
 * median of 5 each:
 *
 * - platform: SIGKILL of the platform process, started again (the router process serves on);
 * - platform, inline router: the same with `--router inline` (the router inside the platform: the
 *   outage the detached router removes);
 * - whole cluster: SIGKILL of the platform and the router process (every flynn-ts process), started
 *   again (the containers keep running in the engine and are adopted);
 * - reboot: the same, and the app's containers killed too (they are started again).
 *
 * Also the time until the platform's controller answers again, and (`--verbose`) when each part of
 * the last restarted platform came up, from its process's start. Prints the load average: the
 * machine is shared. `RESTART_KINDS=platform,whole` runs only those kinds (a whole name, or a prefix).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { request } from 'undici';
import { findRouter, stopRouterProcess } from '../../src/bootstrap/router-process.js';
import { pinOf } from '../../src/common/tls/self-signed.js';
import { ControllerClient } from '../../src/controller/client.js';
import { fixedPort, requestLoop, startNpmStart, type Running } from '../../test/support/npm-start.js';

const RUNS = 5;
const GOAL_MS = 3000;
const HOST = '127.0.0.45';
const APP = 'bench';
const WEB = ['node', '-e', `require('http').createServer((q, s) => s.end('up')).listen(Number(process.env.PORT))`];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const load = () => loadavg().map((l) => l.toFixed(1)).join(' ');

type Kind = 'platform' | 'platform, inline router' | 'whole cluster' | 'reboot';

/** GET through the router until a 200, polling every 10 ms; when it came. */
async function answering(routerUrl: string, timeoutMs = 120_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await request(routerUrl, { headers: { host: `${APP}.flynn.local` }, headersTimeout: 500, bodyTimeout: 500 }).then(
      async (res) => (await res.body.text(), res.statusCode === 200),
      () => false,
    );
    if (ok) return performance.now();
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`the app did not answer through ${routerUrl} within ${timeoutMs} ms`);
}

async function controllerAnswering(client: ControllerClient): Promise<number> {
  for (;;) {
    if (await client.listApps().then(() => true, () => false)) return performance.now();
    await new Promise((r) => setTimeout(r, 20));
  }
}

const docker = new Docker();
const dataDir = await mkdtemp(join(tmpdir(), 'flynn-ts-bench-restart-'));
const ports = { controller: await fixedPort(HOST), router: await fixedPort(HOST), routerHttps: await fixedPort(HOST), git: await fixedPort(HOST), shelf: await fixedPort(HOST) };
const args = ['--verbose', '--runtime', 'docker', '--host', HOST, '--data-dir', dataDir, ...Object.entries({ 'controller-port': ports.controller, 'router-port': ports.router, 'router-https-port': ports.routerHttps, 'git-port': ports.git, 'shelf-port': ports.shelf }).flatMap(([f, p]) => [`--${f}`, String(p)])];
const routerUrl = `http://${HOST}:${ports.router}`;
let current: Running | undefined;
const containers = async () => {
  const id = (await readFile(join(dataDir, 'cluster-id'), 'utf8')).trim();
  return docker.listContainers({ filters: { label: [`io.flynn-ts.host=host1-${id}`] } });
};

try {
  current = await startNpmStart(args);
  const key = (await readFile(join(dataDir, 'controller-key'), 'utf8')).trim();
  const client = new ControllerClient({ url: `https://${HOST}:${ports.controller}`, key, tls: { pin: pinOf(await readFile(join(dataDir, 'controller-tls.crt'), 'utf8')) } });
  await client.createApp({ name: APP });
  const release = await client.createRelease(APP, { processes: { web: { cmd: WEB } } });
  await client.waitForDeployment(APP, (await client.deploy(APP, release.id)).id, { timeoutMs: 60_000 });
  await client.scale(APP, { web: 2 });
  await client.createRoute(APP, { type: 'http', domain: `${APP}.flynn.local`, service: `${APP}-web` });
  await answering(routerUrl);

  const results = new Map<Kind, { answer: number[]; controller: number[]; failed: number[] }>();
  const only = (process.env.RESTART_KINDS ?? '').split(',').filter(Boolean);
  const kinds = ['platform', 'platform, inline router', 'whole cluster', 'reboot'] as const;
  for (const kind of kinds) {
    // A whole name is itself only; another word is a prefix (`whole`).
    if (only.length > 0 && !only.some((o) => kind === o || (!(kinds as readonly string[]).includes(o) && kind.startsWith(o)))) continue;
    const row = { answer: [] as number[], controller: [] as number[], failed: [] as number[] };
    results.set(kind, row);
    const flags = kind === 'platform, inline router' ? [...args, '--router', 'inline'] : args;
    // Start the way this kind restarts, so that the first kill hits the right setup.
    current.proc.kill('SIGKILL');
    await current.exited;
    if (kind === 'platform, inline router' || kind === 'whole cluster') await stopRouterProcess(dataDir);
    current = await startNpmStart(flags);
    await answering(routerUrl);
    for (let i = 0; i < RUNS; i++) {
      // Both web jobs up and registered before each kill.
      while ((await containers()).length < 2) await new Promise((r) => setTimeout(r, 50));
      const loop = requestLoop(routerUrl, `${APP}.flynn.local`);
      await new Promise((r) => setTimeout(r, 300));
      const router = await findRouter(dataDir);
      const killedAt = performance.now();
      current.proc.kill('SIGKILL');
      if (kind !== 'platform' && kind !== 'platform, inline router' && router) process.kill(router.pid, 'SIGKILL');
      if (kind === 'reboot') await Promise.all((await containers()).map((c) => docker.getContainer(c.Id).kill().catch(() => {})));
      await current.exited;
      const answered = answering(routerUrl);
      current = await startNpmStart(flags);
      row.answer.push((await answered) - killedAt);
      row.controller.push((await controllerAnswering(client)) - killedAt);
      await new Promise((r) => setTimeout(r, 500));
      row.failed.push((await loop.stop()).failed);
    }
    const s = (ms: number) => (ms / 1000).toFixed(2);
    const phases = current.stdout().split('\n').filter((l) => /^-----> \+\d+ ms /.test(l)).map((l) => l.replace(/^-----> \+(\d+) ms (\S+): .*$/, '$2 $1'));
    console.log(`${kind.padEnd(24)} last restart, ms from the process's start: ${phases.join(', ')}`);
    console.log(`${kind.padEnd(24)} SIGKILL → app answering through the router: median ${s(median(row.answer))} s (runs ${row.answer.map(s).join(', ')}), failed requests ${row.failed.join(', ')}; controller answering: median ${s(median(row.controller))} s   [load ${load()}]`);
  }
  await client.close();
  const platform = results.get('platform');
  const whole = results.get('whole cluster');
  if (platform && whole) console.log(`goal < ${GOAL_MS / 1000} s: platform ${median(platform.answer) < GOAL_MS ? 'met' : 'not met'}, whole cluster ${median(whole.answer) < GOAL_MS ? 'met' : 'not met'}`);
} finally {
  if (current && current.proc.exitCode === null) current.proc.kill('SIGKILL');
  await stopRouterProcess(dataDir);
  const id = (await readFile(join(dataDir, 'cluster-id'), 'utf8').catch(() => '')).trim();
  if (id) for (const c of await docker.listContainers({ all: true, filters: { label: [`io.flynn-ts.host=host1-${id}`] } })) await docker.getContainer(c.Id).remove({ force: true }).catch(() => {});
  await rm(dataDir, { recursive: true, force: true });
}
