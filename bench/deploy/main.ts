/**
 * `git push` → first 200 through the router with the new code, for the dependency-free node app,
 * on the process and Docker runtimes (median of 5 pushes each, after one warm-up push). Each push
 * changes the app's answer, so the clock stops only once the new release serves; the router is
 * asked while the push runs. It also prints when the push returned (its deploy done).
 *
 * It also prints where the time goes: the median time at which each phase of a push happened,
 * from the trace events the git receiver, slug builder, deployer and host agent publish on their
 * `node:diagnostics_channel`s (the cluster runs in this process).
 */
import { execFile } from 'node:child_process';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Dockerode from 'dockerode';
import { startCluster } from '../../src/bootstrap/index.js';
import { generatePrivateKey, publicKeyLine } from '../../src/git/index.js';

const exec = promisify(execFile);
const RUNS = 5;
const GOAL_MS = 2000;
/** A push whose release does not answer within this long fails the benchmark, in ms. */
const PUSH_TIMEOUT_MS = 60_000;
const CHANNELS = ['flynn-ts:git', 'flynn-ts:slug', 'flynn-ts:deploy', 'flynn-ts:deployer', 'flynn-ts:jobs', 'flynn-ts:host'];

/** When each phase first happened during the current push, in ms since the push started. */
let phases: Map<string, number> | undefined;
let pushStarted = 0;
const onTrace = (message: unknown, name: string | symbol) => {
  const { phase } = message as { phase: string };
  const key = `${String(name).replace('flynn-ts:', '')}: ${phase}`;
  if (phases && !phases.has(key)) phases.set(key, performance.now() - pushStarted);
};
for (const c of CHANNELS) subscribe(c, onTrace);

function get(url: string, host: string): Promise<string> {
  return new Promise((resolve) => {
    const req = request(url, { headers: { host }, agent: false, timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(res.statusCode === 200 ? body : ''));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(''));
    req.end();
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

/** Median time of each phase over the runs, in time order, with the step from the phase before. */
function printPhases(runs: Run[]): void {
  const names = new Set(runs.flatMap((r) => [...r.phases.keys()]));
  const rows = [...names].map((name) => {
    const at = runs.map((r) => r.phases.get(name)).filter((t): t is number => t !== undefined);
    return { name, at: median(at), seen: at.length };
  });
  rows.sort((a, b) => a.at - b.at);
  let previous = 0;
  for (const row of rows) {
    const seen = row.seen === runs.length ? '' : `  (in ${row.seen}/${runs.length} runs)`;
    console.log(`    ${(row.at / 1000).toFixed(3).padStart(6)} s  +${String(Math.round(row.at - previous)).padStart(4)} ms  ${row.name}${seen}`);
    previous = row.at;
  }
}

interface Run {
  /** Push started → first 200 of the new release. */
  ms: number;
  /** Push started → `git push` returned (the deploy done). */
  pushMs: number;
  phases: Map<string, number>;
}

async function bench(runtime: 'process' | 'docker'): Promise<Run[]> {
  const dir = await mkdtemp(join(tmpdir(), 'flynn-ts-bench-deploy-'));
  const cluster = await startCluster({ runtime, ports: { controller: 0, router: 0, git: 0, shelf: 0 }, labels: { 'io.flynn-ts.bench': 'deploy' } });
  try {
    const key = generatePrivateKey();
    const keyFile = join(dir, 'id_rsa');
    await writeFile(keyFile, key, { mode: 0o600 });
    await cluster.client.addKey(publicKeyLine(key));
    await cluster.client.createApp({ name: 'bench' });
    const work = join(dir, 'app');
    await cp(new URL('../../test/fixtures/apps/node-hello', import.meta.url), work, { recursive: true });
    const original = await readFile(join(work, 'server.js'), 'utf8');
    await exec('git', ['init', '-q', '-b', 'main', work]);
    const [host, port] = cluster.gitHost.split(':');
    const ssh = `ssh -i ${keyFile} -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -p ${port}`;
    const runs: Run[] = [];
    for (let i = 0; i <= RUNS; i++) {
      const marker = `build-${i}-${Date.now()}`;
      await writeFile(join(work, 'server.js'), original.replace('Hello from flynn-ts on port ${port}', `Hello from flynn-ts ${marker}`));
      await exec('git', ['-C', work, 'add', '-A']);
      await exec('git', ['-C', work, '-c', 'user.email=b@b', '-c', 'user.name=b', 'commit', '-qm', marker]);
      const started = performance.now();
      pushStarted = started;
      phases = new Map();
      // The router is asked while the push runs: the new release answers as soon as its first job
      // is up, before the push returns (the deploy then holds the new jobs up for 1 s).
      const pushed = exec('git', ['-C', work, 'push', `ssh://git@${host}:${port}/bench.git`, 'main'], { env: { ...process.env, GIT_SSH_COMMAND: ssh } }).then(() => {
        phases?.set('bench: git push returned', performance.now() - started);
      });
      let failed: unknown;
      pushed.catch((err: unknown) => (failed = err));
      // The machine is shared: a job container removed by someone else must end the run, not hang it.
      while (!(await get(cluster.routerUrl, `bench.${cluster.domain}`)).includes(marker)) {
        if (failed !== undefined) throw failed;
        if (performance.now() - started > PUSH_TIMEOUT_MS) throw new Error(`push ${i} of ${runtime}: the new release did not answer within ${PUSH_TIMEOUT_MS} ms`);
        await new Promise((r) => setTimeout(r, 10));
      }
      const ms = performance.now() - started;
      phases.set('bench: first 200 of the new release', ms);
      await pushed;
      const pushMs = phases.get('bench: git push returned') as number;
      if (i > 0) runs.push({ ms, pushMs, phases }); // the first push is a warm-up (no build cache, first route)
      phases = undefined;
    }
    return runs;
  } finally {
    await cluster.close();
    await rm(dir, { recursive: true, force: true });
  }
}

const dockerUp = await new Dockerode().ping().then(
  () => true,
  () => false,
);
const results: Record<string, number> = {};
for (const runtime of dockerUp ? (['process', 'docker'] as const) : (['process'] as const)) {
  const runs = await bench(runtime);
  const times = runs.map((r) => r.ms);
  results[runtime] = median(times);
  console.log(`${runtime.padEnd(8)} git push → first 200 of the new release: median ${(median(times) / 1000).toFixed(2)} s  (runs: ${times.map((t) => (t / 1000).toFixed(2)).join(', ')} s)  vs the 2 s goal: ${(median(times) / GOAL_MS).toFixed(2)}x`);
  console.log(`${''.padEnd(8)} git push → git push returned (the deploy done): median ${(median(runs.map((r) => r.pushMs)) / 1000).toFixed(2)} s`);
  console.log(`  phases (median time since the push started, step from the row above):`);
  printPhases(runs);
}
for (const c of CHANNELS) unsubscribe(c, onTrace);
if (!dockerUp) console.log('docker   (engine not reachable: skipped)');
if (results.docker !== undefined && results.process !== undefined) {
  console.log(`docker / process: ${(results.docker / results.process).toFixed(2)}x   goal on docker: < 2 s → ${results.docker < GOAL_MS ? 'met' : 'not met'} (${(results.docker / GOAL_MS).toFixed(2)}x the goal)`);
}
