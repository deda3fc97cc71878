// Shared helpers for the slug suites: source tars of the fixture apps, a shelf on a temp dir,
// and running a slug with the slug runner on Docker or as a host process.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import Dockerode from 'dockerode';
import { request } from 'undici';
import { ShelfClient } from '../../src/shelf/client.js';
import { FsBlobStore } from '../../src/shelf/fs-blob-store.js';
import { startShelf, type Shelf } from '../../src/shelf/server.js';
import { slugRunnerCommand } from '../../src/slug/runner.js';
export { freePort } from '../../src/host/testing/jobs.js';

export const REPO = path.resolve(import.meta.dirname, '../..');
export const FIXTURES = path.join(REPO, 'test/fixtures/apps');
/** Every container these suites start carries these labels; cleanup removes exactly those. */
export const RUN_ID = randomUUID().slice(0, 8);
export const TEST_LABELS = { 'io.flynn-ts.test': '1', 'io.flynn-ts.test.slug-run': RUN_ID };

/** A fixture app (plus `extra` files) as a tar stream, as the git receiver would hand it over. */
export async function sourceTar(app: string, extra: Record<string, string> = {}): Promise<Readable> {
  const dir = await mkdtemp(path.join(tmpdir(), `flynn-src-${app}-`));
  await cp(path.join(FIXTURES, app), dir, { recursive: true });
  for (const [name, content] of Object.entries(extra)) {
    const file = path.join(dir, name);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, content);
  }
  const tar = spawn('tar', ['-c', '-C', dir, '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
  // Consume at once: a child's stdout left unread is lost when the child exits.
  const out = new PassThrough();
  tar.stdout.pipe(out);
  tar.once('close', () => void rm(dir, { recursive: true, force: true }));
  return out;
}

export interface TestShelf {
  shelf: Shelf;
  client: ShelfClient;
  root: string;
  close(): Promise<void>;
}

/** Write a buildpack into `dir`: `bin/detect`, `bin/compile`, `bin/release` with these bodies, executable. */
export async function writeBuildpack(dir: string, bins: Record<'detect' | 'compile' | 'release', string>): Promise<void> {
  await mkdir(path.join(dir, 'bin'));
  for (const [f, body] of Object.entries(bins)) {
    await writeFile(path.join(dir, 'bin', f), body);
    await chmod(path.join(dir, 'bin', f), 0o755);
  }
}

export async function startTestShelf(host: string): Promise<TestShelf> {
  const root = await mkdtemp(path.join(tmpdir(), 'flynn-slug-shelf-'));
  const store = new FsBlobStore({ root });
  const shelf = await startShelf({ store, host, port: 0 });
  const client = new ShelfClient({ url: shelf.url });
  return {
    shelf,
    client,
    root,
    async close() {
      await client.close();
      await shelf.close();
      await store.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** Names of the entries of a gzipped tar held in shelf, and the concatenated content of its files. */
export async function slugContents(client: ShelfClient, slugPath: string): Promise<{ names: string[]; text: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'flynn-slug-list-'));
  try {
    const file = path.join(dir, 'slug.tgz');
    await pipeline((await client.get(slugPath)).body, createWriteStream(file));
    const list = await run('tar', ['-tzf', file]);
    const text = await run('tar', ['-xzOf', file]);
    return { names: list.split('\n').filter(Boolean).map((n) => n.replace(/^\.\//, '')), text };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}`))));
  });
}

/** GET `url` until it answers (the process may still be starting). */
export async function getText(url: string, timeoutMs = 15_000): Promise<{ status: number; body: string }> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const res = await request(url, { headersTimeout: 2000, bodyTimeout: 2000 });
      return { status: res.statusCode, body: await res.body.text() };
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms: ${(last as Error)?.message}`);
}

/** A slug process started by a test; `logs()` is what it printed so far. */
export interface RunningSlug {
  url: string;
  logs(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Run process `type` of a slug in a runtime-image container, as a host agent would: the runner
 * command, `SLUG_URL`, `PORT`, and the port published on a loopback address. With
 * `network: 'host'` the runner fetches the slug over HTTP from shelf (which only listens on
 * loopback); otherwise the slug is fetched here and bind-mounted (`SLUG_URL=file://...`).
 */
export async function runSlugInDocker(
  docker: Dockerode,
  opts: { client: ShelfClient; slugPath: string; type: string; env?: Record<string, string>; hostIp: string; network?: 'bridge' | 'host'; port?: number },
): Promise<RunningSlug> {
  const port = opts.port ?? 5000;
  const env: Record<string, string> = { PORT: String(port), ...opts.env };
  const binds: string[] = [];
  let staged: string | undefined;
  if (opts.network === 'host') {
    env.SLUG_URL = opts.client.urlFor(opts.slugPath);
    env.HOST = opts.hostIp;
  } else {
    staged = await mkdtemp(path.join(tmpdir(), 'flynn-slug-stage-'));
    await pipeline((await opts.client.get(opts.slugPath)).body, createWriteStream(path.join(staged, 'slug.tgz')));
    binds.push(`${staged}/slug.tgz:/flynn/slug.tgz:ro`);
    env.SLUG_URL = 'file:///flynn/slug.tgz';
  }
  const container = await docker.createContainer({
    Image: 'flynn-ts/runtime:latest',
    Cmd: slugRunnerCommand(opts.type),
    Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    Labels: { ...TEST_LABELS, 'io.flynn-ts': '1', 'io.flynn-ts.role': 'slugrunner' },
    ExposedPorts: opts.network === 'host' ? undefined : { [`${port}/tcp`]: {} },
    HostConfig: {
      Binds: binds,
      NetworkMode: opts.network ?? 'bridge',
      PortBindings: opts.network === 'host' ? undefined : { [`${port}/tcp`]: [{ HostIp: opts.hostIp, HostPort: '' }] },
      Memory: 256 * 1024 * 1024,
    },
  });
  await container.start();
  let url = `http://${opts.hostIp}:${port}`;
  if (opts.network !== 'host') {
    const info = await container.inspect();
    const published = info.NetworkSettings.Ports[`${port}/tcp`]?.[0]?.HostPort;
    url = `http://${opts.hostIp}:${published}`;
  }
  return {
    url,
    async logs() {
      const buf = (await container.logs({ stdout: true, stderr: true, follow: false })) as unknown as Buffer;
      return buf.toString('latin1');
    },
    async stop() {
      await container.remove({ force: true }).catch(() => {});
      if (staged) await rm(staged, { recursive: true, force: true });
    },
  };
}

/** Run process `type` of a slug as a host process (the process runtime): a per-job APP_DIR, HTTP SLUG_URL. */
export async function runSlugAsProcess(opts: { client: ShelfClient; slugPath: string; type: string; env?: Record<string, string>; hostIp: string; port: number }): Promise<RunningSlug> {
  const appDir = await mkdtemp(path.join(tmpdir(), 'flynn-job-'));
  const [cmd, ...args] = slugRunnerCommand(opts.type);
  const child: ChildProcess = spawn(cmd === 'node' ? process.execPath : cmd!, args, {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', SLUG_URL: opts.client.urlFor(opts.slugPath), APP_DIR: appDir, PORT: String(opts.port), HOST: opts.hostIp, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d));
  child.stderr?.on('data', (d: Buffer) => (out += d));
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  return {
    url: `http://${opts.hostIp}:${opts.port}`,
    async logs() {
      return out;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await rm(appDir, { recursive: true, force: true });
    },
  };
}

/** Remove the containers this run created (by its unique label), whatever state they are in. */
export async function removeTestContainers(docker: Dockerode): Promise<number> {
  const list = await docker.listContainers({ all: true, filters: { label: [`io.flynn-ts.test.slug-run=${RUN_ID}`] } });
  await Promise.all(list.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => {})));
  return list.length;
}
