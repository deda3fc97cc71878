/** `npm start` (examples/cluster/main.ts) as a real child process, and waiting for an app through its router. */
import { spawn, type ChildProcess } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { request } from 'undici';
import { stopLeftJobs } from '../../src/bootstrap/abandoned-clusters.js';
import { stopRouterProcess } from '../../src/bootstrap/router-process.js';

const TSX = pathToFileURL(resolve('node_modules/tsx/dist/loader.mjs')).href;
const MAIN = resolve('examples/cluster/main.ts');

export interface Running {
  proc: ChildProcess;
  /** The exit code, or the signal that ended it. */
  exited: Promise<number | NodeJS.Signals | null>;
  stdout: () => string;
  stderr: () => string;
  fingerprint: string;
}

/**
 * Start `npm start` with `args` and wait for its banner. `preload` modules are imported first
 * (`node --import`), with `env` added to the child's environment: tests hook it from inside.
 */
export async function startNpmStart(args: string[], options: { preload?: string[]; env?: Record<string, string> } = {}): Promise<Running> {
  const imports = [TSX, ...(options.preload ?? []).map((p) => pathToFileURL(resolve(p)).href)].flatMap((m) => ['--import', m]);
  const proc = spawn(process.execPath, [...imports, MAIN, ...args], { env: { ...process.env, CONTROLLER_KEY: '', ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout?.setEncoding('utf8').on('data', (c: string) => (out += c));
  proc.stderr?.setEncoding('utf8').on('data', (c: string) => (err += c));
  const exited = new Promise<number | NodeJS.Signals | null>((r) => proc.once('exit', (code, signal) => r(code ?? signal)));
  const deadline = Date.now() + 90_000;
  while (!out.includes('Add it to the CLI')) {
    if (proc.exitCode !== null || proc.signalCode !== null || Date.now() > deadline) throw new Error(`npm start did not come up (exit ${proc.exitCode ?? proc.signalCode}): ${out}\n${err}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const fingerprint = /host key (SHA256:\S+)/.exec(out)?.[1] ?? '';
  return { proc, exited, stdout: () => out, stderr: () => err, fingerprint };
}

/** Ports {@link fixedPort} handed out in this test process. */
const handedOut = new Set<number>();

/**
 * A free port below Linux's ephemeral range (32768+), as a user's fixed ports are: the restarted
 * cluster must get the same ports back, and a port the kernel hands out (e.g. as the source port of
 * a readiness probe's connection from the same address) could hold it at the restart.
 */
export async function fixedPort(host: string): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    // A port handed out before is still free until its cluster starts: never hand it out twice.
    if (handedOut.has(port)) continue;
    const free = await new Promise<boolean>((resolve) => {
      const probe = createServer();
      probe.once('error', () => resolve(false));
      probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve(true)));
    });
    if (free) {
      handedOut.add(port);
      return port;
    }
  }
}

/** GET through the router with `Host: <host>` until it answers 200 (and `accept` takes the body); the body and when it did. */
/** Fixed ports for every listener of one `npm start` on `host`, the flags that ask for them, and the router's URL. */
export async function npmStartPorts(host: string): Promise<{ ports: { controller: number; router: number; routerHttps: number; git: number; shelf: number }; flags: string[]; routerUrl: string }> {
  const ports = { controller: await fixedPort(host), router: await fixedPort(host), routerHttps: await fixedPort(host), git: await fixedPort(host), shelf: await fixedPort(host) };
  const flags = ['--host', host, ...Object.entries({ 'controller-port': ports.controller, 'router-port': ports.router, 'router-https-port': ports.routerHttps, 'git-port': ports.git, 'shelf-port': ports.shelf }).flatMap(([f, p]) => [`--${f}`, String(p)])];
  return { ports, flags, routerUrl: `http://${host}:${ports.router}` };
}

/** Stop an `npm start` (Ctrl-C) if it still runs, then its data dir's router process, and remove the data dir. */
export async function endNpmStart(running: Running | undefined, dataDir: string): Promise<void> {
  if (running && running.proc.exitCode === null) {
    running.proc.kill('SIGINT');
    await running.exited;
  }
  if (dataDir) {
    await stopRouterProcess(dataDir);
    await rm(dataDir, { recursive: true, force: true });
  }
}

export async function serving(routerUrl: string, host: string, timeoutMs = 60_000, accept: (body: string) => boolean = () => true): Promise<{ body: string; at: number }> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      // undici's request, not fetch: fetch drops a Host header.
      const res = await request(routerUrl, { headers: { host }, headersTimeout: 1000, bodyTimeout: 1000 });
      const body = await res.body.text();
      if (res.statusCode === 200 && accept(body)) return { body, at: Date.now() };
      last = `HTTP ${res.statusCode} ${body}`;
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`${host} did not answer through ${routerUrl} within ${timeoutMs} ms: ${last}`);
}

/** Requests in a loop through the router with `Host: <host>`, each one counted as served (200) or failed. */
export function requestLoop(routerUrl: string, host: string): { counts(): { ok: number; failed: number; failures: string[] }; stop(): Promise<{ ok: number; failed: number; failures: string[] }> } {
  let running = true;
  let ok = 0;
  const failures: string[] = [];
  const loop = (async () => {
    while (running) {
      try {
        const res = await request(routerUrl, { headers: { host }, headersTimeout: 5000, bodyTimeout: 5000 });
        const body = await res.body.text();
        if (res.statusCode === 200) ok++;
        else failures.push(`HTTP ${res.statusCode} ${body.trim()}`);
      } catch (e) {
        failures.push((e as Error).message);
      }
    }
  })();
  return {
    counts: () => ({ ok, failed: failures.length, failures: [...failures] }),
    async stop() {
      running = false;
      await loop;
      return { ok, failed: failures.length, failures: failures.slice(0, 5) };
    },
  };
}

/**
 * End what an `npm start` on `dataDir` leaves running on purpose (docs/decisions.md): its router
 * process, and this run's apps.
 */
export async function stopWhatOutlives(dataDir: string): Promise<void> {
  await stopRouterProcess(dataDir);
  await stopLeftJobs(dataDir);
}
