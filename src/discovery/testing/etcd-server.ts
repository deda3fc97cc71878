import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';
import { sleep } from '../../common/lifecycle.js';

export interface EtcdServerOptions {
  /** Where etcd keeps its data; default a fresh temp dir removed by `close()`. */
  dataDir?: string;
  /** Loopback address to bind. Default 127.0.0.1. */
  host?: string;
  /** The etcd binary. Default `etcd` from PATH. */
  binary?: string;
  /** How long to wait for the server to answer /health, in ms. Default 15 000. */
  startTimeoutMs?: number;
  /** Serve clients over HTTPS with these PEM files, asking for a client certificate signed by `caFile` (`--client-cert-auth`); the health probe shows the server's own certificate, which must allow clientAuth too. */
  tls?: { certFile: string; keyFile: string; caFile: string };
}

/** A private single-member etcd for tests that need to stop and restart it. */
export interface EtcdServer extends AsyncDisposable {
  /** Client URL, e.g. `http://127.0.0.1:40123`. Stays the same across restarts. */
  readonly endpoint: string;
  readonly dataDir: string;
  /** Stop the process (SIGTERM, then SIGKILL after 5 s); the data stays. */
  stop(): Promise<void>;
  /** SIGKILL the process (a crash: no clean shutdown); the data stays, `start()` starts it again. */
  kill(): Promise<void>;
  /** Start again after `stop()` on the same ports and data; no-op while running. */
  start(): Promise<void>;
  /** Stop if running, then start again on the same ports and data. */
  restart(): Promise<void>;
  /** Stop and remove the data dir if it was ours. Idempotent. */
  close(): Promise<void>;
}

/** Spawn the `etcd` binary on free loopback ports with its own data dir. */
export async function startEtcdServer(options: EtcdServerOptions = {}): Promise<EtcdServer> {
  const host = options.host ?? '127.0.0.1';
  const ownsDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'flynn-ts-etcd-')));
  const [clientPort, peerPort] = [await freePort(host), await freePort(host)];
  const tls = options.tls;
  const endpoint = `${tls ? 'https' : 'http'}://${host}:${clientPort}`;
  // The health probe shows etcd a client certificate: with --client-cert-auth it is its own CA's.
  const probe = tls ? new Agent({ connect: { ca: readFileSync(tls.caFile), cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) } }) : undefined;
  const peer = `http://${host}:${peerPort}`;
  let child: ChildProcess | undefined;
  let log = '';
  let closed = false;

  const start = async () => {
    log = '';
    const proc = spawn(
      options.binary ?? 'etcd',
      [
        '--name', 'test',
        '--data-dir', dataDir,
        '--listen-client-urls', endpoint,
        '--advertise-client-urls', endpoint,
        '--listen-peer-urls', peer,
        '--initial-advertise-peer-urls', peer,
        '--initial-cluster', `test=${peer}`,
        '--initial-cluster-state', 'new',
        '--log-level', 'warn',
        ...(tls ? ['--cert-file', tls.certFile, '--key-file', tls.keyFile, '--client-cert-auth', '--trusted-ca-file', tls.caFile] : []),
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    child = proc;
    let spawnError: Error | undefined;
    proc.once('error', (err) => (spawnError = err));
    proc.stderr?.on('data', (chunk: Buffer) => (log = (log + chunk.toString()).slice(-4000)));
    const deadline = Date.now() + (options.startTimeoutMs ?? 15_000);
    while (Date.now() < deadline) {
      if (spawnError) throw new Error(`cannot start ${options.binary ?? 'etcd'} (install etcd-server): ${spawnError.message}`);
      if (proc.exitCode !== null) throw new Error(`etcd exited with ${proc.exitCode}: ${log}`);
      try {
        const res = await request(`${endpoint}/health`, { headersTimeout: 1000, bodyTimeout: 1000, ...(probe ? { dispatcher: probe } : {}) });
        const body = (await res.body.json()) as { health?: string };
        if (body.health === 'true') return;
      } catch {
        // not up yet
      }
      await sleep(50);
    }
    await stop();
    throw new Error(`etcd did not become healthy at ${endpoint}: ${log}`);
  };

  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  };

  try {
    await start();
  } catch (err) {
    if (ownsDir) await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
  const close = async () => {
    if (closed) return;
    closed = true;
    await stop();
    await probe?.close();
    if (ownsDir) await rm(dataDir, { recursive: true, force: true });
  };
  return {
    endpoint,
    dataDir,
    stop: () => stop(),
    kill: () => stop('SIGKILL'),
    async start() {
      if (closed) throw new Error('etcd server is closed');
      if (child === undefined) await start();
    },
    async restart() {
      await stop();
      await start();
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
