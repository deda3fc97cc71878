/**
 * Where the real services a suite needs are, and what to do when they are missing: in CI
 * (`CI=true`) a missing service FAILS the suite with a clear message; elsewhere the suite is
 * skipped and says why. Use with `describe.runIf(await needEtcd('discovery etcd'))(...)`.
 */
import { spawnSync } from 'node:child_process';
import Docker from 'dockerode';
import { request } from 'undici';

const inCI = process.env.CI === 'true';

/** etcd client endpoints, from `ETCD_ENDPOINTS` (comma separated), default `http://127.0.0.1:2379`. */
export const etcdEndpoints = (process.env.ETCD_ENDPOINTS ?? 'http://127.0.0.1:2379').split(',').map((s) => s.trim());

/** The Docker socket, from `DOCKER_SOCKET`, default `/var/run/docker.sock`. */
export const dockerSocket = process.env.DOCKER_SOCKET ?? '/var/run/docker.sock';

async function etcdAnswers(): Promise<string | undefined> {
  try {
    const res = await request(`${etcdEndpoints[0]}/health`, { headersTimeout: 2000, bodyTimeout: 2000 });
    const body = (await res.body.json()) as { health?: string };
    return body.health === 'true' ? undefined : `etcd at ${etcdEndpoints[0]} is unhealthy`;
  } catch (err) {
    return `etcd is not answering at ${etcdEndpoints[0]} (${(err as Error).message})`;
  }
}

async function dockerAnswers(): Promise<string | undefined> {
  try {
    await new Docker({ socketPath: dockerSocket }).ping();
    return undefined;
  } catch (err) {
    return `Docker is not answering at ${dockerSocket} (${(err as Error).message})`;
  }
}

/** How long CI asks again before a service counts as missing: a loaded machine can slow an answer past one probe (etcd 3.4's /health says false when its quorum read takes over 1 s). */
const CI_PROBE_MS = 15_000;

async function need(what: string, probe: () => Promise<string | undefined>, howTo: string): Promise<boolean> {
  let problem = await probe();
  for (const deadline = Date.now() + CI_PROBE_MS; inCI && problem !== undefined && Date.now() < deadline; problem = await probe()) await new Promise((r) => setTimeout(r, 500));
  if (problem === undefined) return true;
  if (inCI) throw new Error(`${what}: ${problem}. CI must provide it (${howTo}).`);
  console.warn(`[skipped] ${what}: ${problem}. ${howTo} to run it.`);
  return false;
}

/** True when etcd answers; throws in CI when it does not. */
export function needEtcd(suite: string): Promise<boolean> {
  return need(suite, etcdAnswers, 'start etcd on 127.0.0.1:2379 (bash .ci/run does) or set ETCD_ENDPOINTS');
}

/** True when the Docker engine answers; throws in CI when it does not. */
export function needDocker(suite: string): Promise<boolean> {
  return need(suite, dockerAnswers, 'start dockerd (bash .ci/run does) or set DOCKER_SOCKET');
}

/** True when Debian's `pebble` (Let's Encrypt's ACME test server) is installed; throws in CI when it is not. */
export function needPebble(suite: string): Promise<boolean> {
  return need(suite, async () => (spawnSync('pebble', ['-h']).error ? 'pebble is not installed' : undefined), 'apt-get install pebble (bash .ci/run does)');
}

/** True when an `haproxy` binary (Debian's) runs; throws in CI when it does not. */
export function needHaproxy(suite: string): Promise<boolean> {
  return need(suite, async () => (spawnSync('haproxy', ['-v']).status === 0 ? undefined : 'haproxy is not installed'), 'apt-get install haproxy (bash .ci/run does)');
}
