import { spawn, execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { tracer } from '../common/trace.js';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import ssh2 from 'ssh2';
import type { Connection, ServerChannel } from 'ssh2';
import { CloseGuard, settlesWithin, type Closable } from '../common/lifecycle.js';
import { silentLogger, type Logger } from '../common/logger.js';
import { GitOptionsError, PushRejectedError } from './errors.js';
import { preReceiveHook } from './hook-script.js';
import { fingerprintOf, fingerprintOfKey } from './keys.js';
import type { OfferedKey, Push, PushPreparation, RefUpdate } from './types.js';

const { Server: SshServer, utils } = ssh2;

/** Push phases are published on this `node:diagnostics_channel` as `{ phase, app }` (tracing, benchmarks). */
export const GIT_TRACE_CHANNEL = 'flynn-ts:git';
const publish = tracer(GIT_TRACE_CHANNEL);
const traceGit = (phase: string, app: string) => publish(phase, { app });
const run = promisify(execFile);

/** What the receiver needs from the platform (the controller, in a flynn-ts cluster). */
export interface GitPlatform {
  /** May this key push and fetch? */
  authorize(key: OfferedKey): Promise<boolean>;
  /** Is there an app of this name (one repository per app)? */
  appExists(app: string): Promise<boolean>;
  /**
   * Build and deploy a push. Throw to reject the push; the message is shown to the pusher as
   * ` !     <message>`, unless that is the very line the pusher saw last (a build that already
   * said why it failed is rejected with that line, and the pusher sees it once).
   */
  deploy(push: Push): Promise<void>;
  /**
   * Optional: called when a push to an existing app begins, before its pack has arrived, to get
   * ready for its deploy (e.g. start a build container while git receives the objects). What it
   * returns is given to `deploy` as `push.preparation` and disposed of when the push ends. It must
   * not throw; a platform that cannot prepare returns undefined.
   */
  preparePush?(app: string): PushPreparation | undefined;
}

export interface GitReceiverOptions {
  /** Address to listen on. Default `127.0.0.1`. */
  host?: string;
  /** SSH port; 0 picks a free one. Default 2222. */
  port?: number;
  /** The SSH host private key (PEM or OpenSSH). See `loadOrCreateHostKey`. */
  hostKey: string;
  /** Directory holding one bare repository per app (`<app>.git`). */
  reposDir: string;
  platform: GitPlatform;
  /** Pushes to these branches deploy; others are only stored. Default `['main', 'master']`. */
  deployBranches?: string[];
  logger?: Logger;
}

export const GIT_RECEIVER_DEFAULTS = Object.freeze({
  host: '127.0.0.1',
  port: 2222,
  deployBranches: ['main', 'master'],
  /** How long `close()` waits for the pushes it cancels to tell their pushers, in ms. */
  closeGraceMs: 5_000,
});

/** Why a push is cancelled when the receiver closes (the platform stops): the pusher's last line. */
const SHUTTING_DOWN = new Error('the platform is shutting down: push again once it is back');

export interface GitReceiver extends Closable {
  /** `host:port` the SSH server listens on. */
  readonly addr: string;
  readonly port: number;
  /** Fingerprint of the host key (`SHA256:...`), for `flynn server-add` pins. */
  readonly fingerprint: string;
}

const COMMAND_RE = /^(git-receive-pack|git-upload-pack) '\/?([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.git)?\/?'$/;

interface Session {
  app: string;
  repo: string;
  fingerprint: string;
  abort: AbortController;
  preparation?: PushPreparation;
  /** Resolves when this push's git process has exited, i.e. after it moved (or not) its refs. */
  finished: Promise<void>;
  /** Resolves when the pusher has closed this push's channel (its git read the outcome). */
  hungUp: Promise<void>;
}

/**
 * Start the git receiver (Flynn's gitreceived + flynn-receive): an SSH server accepting only keys
 * the platform authorizes, serving `git-receive-pack` / `git-upload-pack` into a bare repository
 * per existing app. A push to a deploy branch is handed to `platform.deploy` from the repository's
 * pre-receive hook, so the build streams to the pusher live and a failed deploy rejects the push
 * (the branch does not move and the previous release keeps serving). Deploys of one app run one at
 * a time; different apps deploy in parallel.
 */
export async function startGitReceiver(options: GitReceiverOptions): Promise<GitReceiver> {
  if (!options.reposDir) throw new GitOptionsError('reposDir is required', 'reposDir');
  const host = options.host ?? GIT_RECEIVER_DEFAULTS.host;
  const deployRefs = (options.deployBranches ?? GIT_RECEIVER_DEFAULTS.deployBranches).map((b) => `refs/heads/${b}`);
  const logger = (options.logger ?? silentLogger).child({ component: 'git' });
  const fingerprint = fingerprintOfKey(options.hostKey);
  const { platform } = options;
  await mkdir(options.reposDir, { recursive: true });

  const sessions = new Map<string, Session>();
  const appLocks = new Map<string, Promise<void>>();
  const connections = new Set<Connection>();

  // The hooks reach back over a unix socket in a private directory.
  const socketDir = await mkdtemp(join(tmpdir(), 'flynn-git-'));
  await chmod(socketDir, 0o700);
  const socketPath = join(socketDir, 'receive.sock');
  const hookServer: HttpServer = createServer((req, res) => {
    handleHook(req, res).catch((err: Error) => {
      logger.error('hook request failed', { err: err.message });
      if (!res.headersSent) res.writeHead(500);
      res.end(JSON.stringify({ done: true, ok: false }) + '\n');
    });
  });
  await new Promise<void>((resolve) => hookServer.listen(socketPath, resolve));

  async function handleHook(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const session = sessions.get(String(req.headers['x-flynn-token'] ?? ''));
    if (!session || req.url !== '/push' || req.method !== 'POST') {
      req.resume();
      res.writeHead(403).end(JSON.stringify({ line: 'flynn-ts: unknown push', done: true, ok: false }) + '\n');
      return;
    }
    const update = JSON.parse(String(req.headers['x-flynn-update'])) as RefUpdate;
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    let lastLine: string | undefined;
    const output = (line: string) => {
      lastLine = line;
      if (!res.writableEnded) res.write(JSON.stringify({ line }) + '\n');
    };
    // One deploy per app at a time: chain behind the previous push of the same app.
    const previous = appLocks.get(session.app);
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const chained = (previous ?? Promise.resolve()).then(() => mine);
    appLocks.set(session.app, chained);
    try {
      if (previous) {
        output('-----> Waiting for the previous push of this app to finish');
        traceGit('push waiting', session.app);
        await previous;
      }
      // A push that waited may have been overtaken: git would refuse its ref update after the
      // deploy, so refuse it before deploying anything.
      if ((await currentRev(session.repo, update.ref)) !== update.oldRev) {
        throw new PushRejectedError(`${update.ref.replace('refs/heads/', '')} moved while this push waited (another push deployed first): pull and push again`);
      }
      traceGit('pack received', session.app);
      logger.info('deploying push', { app: session.app, rev: update.newRev, ref: update.ref });
      const push: Push = { app: session.app, fingerprint: session.fingerprint, update, archive: req, output, signal: session.abort.signal };
      if (session.preparation) push.preparation = session.preparation;
      await platform.deploy(push);
      traceGit('deployed', session.app);
      res.end(JSON.stringify({ done: true, ok: true }) + '\n');
    } catch (err) {
      req.resume();
      logger.warn('push rejected', { app: session.app, err: (err as Error).message });
      const rejection = ` !     ${(err as Error).message}`;
      if (rejection !== lastLine) output(rejection);
      if (session.abort.signal.reason === SHUTTING_DOWN && (err as Error).message !== SHUTTING_DOWN.message) output(`       ${SHUTTING_DOWN.message}`);
      res.end(JSON.stringify({ done: true, ok: false }) + '\n');
    } finally {
      // Hold the app until git has moved the branch, so the next push sees where it now is.
      void session.finished.then(() => {
        release();
        if (appLocks.get(session.app) === chained) appLocks.delete(session.app);
      });
    }
  }

  async function ensureRepo(app: string): Promise<string> {
    const dir = join(options.reposDir, `${app}.git`);
    if (!existsSync(join(dir, 'HEAD'))) {
      await run('git', ['init', '--quiet', '--bare', dir]);
      await run('git', ['--git-dir', dir, 'symbolic-ref', 'HEAD', deployRefs[0] ?? 'refs/heads/main']);
    }
    // (Re)written every time so a repo always runs the hook of this receiver version.
    await writeFile(join(dir, 'hooks', 'pre-receive'), preReceiveHook(process.execPath), { mode: 0o755 });
    return dir;
  }

  /** The platform's preparation for a push, if it makes one; never throws. */
  function prepare(app: string): PushPreparation | undefined {
    try {
      return platform.preparePush?.(app);
    } catch (err) {
      logger.warn('preparing a push failed', { app, err: (err as Error).message });
      return undefined;
    }
  }

  function onExec(channel: ServerChannel, command: string, key: OfferedKey): void {
    const fail = (message: string) => {
      channel.stderr.write(`flynn-ts: ${message}\n`);
      channel.exit(1);
      channel.end();
    };
    const match = COMMAND_RE.exec(command);
    if (!match) return fail(`only git push and fetch are served here (got ${JSON.stringify(command.slice(0, 80))})`);
    const [, gitCommand, app] = match as unknown as [string, string, string];
    void (async () => {
      if (!(await platform.appExists(app))) return fail(`no such app: ${app} (create it first: flynn create ${app})`);
      traceGit('ssh exec', app);
      const repo = await ensureRepo(app);
      const token = randomBytes(24).toString('hex');
      let finish!: () => void;
      const finished = new Promise<void>((resolve) => (finish = resolve));
      const hungUp = new Promise<void>((resolve) => channel.on('close', () => resolve()));
      const session: Session = { app, repo, fingerprint: key.fingerprint, abort: new AbortController(), finished, hungUp };
      if (gitCommand === 'git-receive-pack') session.preparation = prepare(app);
      sessions.set(token, session);
      const child = spawn(gitCommand, [repo], {
        env: { ...process.env, FLYNN_RECEIVE_SOCKET: socketPath, FLYNN_RECEIVE_TOKEN: token, FLYNN_DEPLOY_REFS: deployRefs.join(' ') },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      channel.pipe(child.stdin);
      child.stdout.pipe(channel, { end: false });
      child.stderr.pipe(channel.stderr, { end: false });
      channel.on('close', () => {
        session.abort.abort(new Error('the pusher disconnected'));
        child.kill('SIGTERM');
      });
      child.on('error', (err) => logger.error('git failed to start', { err: err.message }));
      child.on('close', (code) => {
        sessions.delete(token);
        void session.preparation?.dispose().catch((err: Error) => logger.warn('disposing of a push preparation failed', { app, err: err.message }));
        finish();
        channel.exit(code ?? 1);
        channel.end();
      });
    })().catch((err: Error) => fail(err.message));
  }

  const server = new SshServer({ hostKeys: [options.hostKey] }, (client) => {
    connections.add(client);
    let key: OfferedKey | undefined;
    client.on('authentication', (ctx) => {
      if (ctx.method !== 'publickey') return ctx.reject(['publickey']);
      const offered = offeredKey(ctx.key.data);
      void platform.authorize(offered).then(
        (ok) => {
          if (!ok) return ctx.reject(['publickey']);
          if (!ctx.signature) return ctx.accept(); // the client asks whether this key would do
          const parsed = utils.parseKey(`${offered.algo} ${offered.blob.toString('base64')}`);
          if (parsed instanceof Error || Array.isArray(parsed) || parsed.verify(ctx.blob as Buffer, ctx.signature, ctx.hashAlgo) !== true) {
            return ctx.reject(['publickey']);
          }
          key = offered;
          ctx.accept();
        },
        (err: Error) => {
          logger.error('authorize failed', { err: err.message });
          ctx.reject(['publickey']);
        },
      );
    });
    client.on('ready', () => {
      client.on('session', (acceptSession) => {
        const session = acceptSession();
        session.on('exec', (accept, _reject, info) => onExec(accept(), info.command, key as OfferedKey));
        session.on('shell', (accept) => {
          const channel = accept();
          channel.stderr.write('flynn-ts: interactive shells are not served; use git push\n');
          channel.exit(1);
          channel.end();
        });
        session.on('pty', (_accept, reject) => reject?.());
        session.on('subsystem', (_accept, reject) => reject());
      });
    });
    client.on('error', (err) => logger.debug('ssh client error', { err: err.message }));
    client.on('close', () => connections.delete(client));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? GIT_RECEIVER_DEFAULTS.port, host, () => resolve());
  }).catch(async (err: unknown) => {
    // Not listening: take the hook socket down with it.
    await new Promise<void>((resolve) => hookServer.close(() => resolve()));
    await rm(socketDir, { recursive: true, force: true });
    throw err;
  });
  const port = (server.address() as AddressInfo).port;
  logger.info('git receiver listening', { addr: `${host}:${port}`, fingerprint });

  const guard = new CloseGuard('git receiver');
  const close = () =>
    guard.close(async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Pushes in flight are cancelled first and given a moment to tell their pusher why (their
      // rejection reaches git as remote: lines): cut at once, git only says the remote hung up.
      const inFlight = [...sessions.values()];
      for (const s of inFlight) s.abort.abort(SHUTTING_DOWN);
      // Each pusher's git hangs up once it has read the outcome: wait for that too, within the grace
      // (for the pushers only: an idle connection would hold the close for the whole grace).
      if (inFlight.length > 0) await settlesWithin(Promise.all(inFlight.map((s) => s.finished.then(() => s.hungUp))), GIT_RECEIVER_DEFAULTS.closeGraceMs);
      for (const c of connections) c.end();
      await closed;
      await new Promise<void>((resolve) => hookServer.close(() => resolve()));
      await rm(socketDir, { recursive: true, force: true });
    });
  return { addr: `${host}:${port}`, port, fingerprint, close, [Symbol.asyncDispose]: close };
}

const ZERO_REV = '0'.repeat(40);

/** The revision a ref points at, or the all-zero revision git uses for "no such ref". */
async function currentRev(repo: string, ref: string): Promise<string> {
  try {
    return (await run('git', ['--git-dir', repo, 'rev-parse', '--verify', '--quiet', ref])).stdout.trim();
  } catch {
    return ZERO_REV;
  }
}

/** The key as offered, with its type read from the wire blob (the algo may name a signature scheme). */
function offeredKey(blob: Buffer): OfferedKey {
  const typeLength = blob.readUInt32BE(0);
  const algo = blob.subarray(4, 4 + typeLength).toString('ascii');
  return { algo, blob, fingerprint: fingerprintOf(blob) };
}
