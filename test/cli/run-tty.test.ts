/**
 * `flynn run` as a user types it: in a real terminal (a tmux pane), `flynn run bash` is a shell
 * in a job — a Docker job on the stack image, or a host process on a pty (python3's pty module) —
 * with its exit status, window size and Ctrl-C; without a terminal, stdin is piped.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestCluster, serverAddArgs, type TestCluster } from '../../src/bootstrap/index.js';
import { removeTestContainers } from '../host/support.js';
import { needDocker } from '../support/services.js';

const MAIN = resolve('src/cli/main.ts');
const TSX = pathToFileURL(resolve('node_modules/tsx/dist/loader.mjs')).href;

const sh = (cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((done) =>
    execFile(cmd, args, { env, encoding: 'utf8' }, (err, stdout, stderr) => done({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })),
  );

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const got = await fn();
    if (got !== undefined) return got;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

if (await needDocker('flynn run in a terminal')) describeRunTty('docker');
describeRunTty('process');

function describeRunTty(runtime: 'docker' | 'process'): void {
  describe(`flynn run with a terminal (tmux) and without (${runtime} runtime)`, () => {
    let cluster: TestCluster;
    let dir: string;
    let env: NodeJS.ProcessEnv;
    const socket = `flynn-runtty-${runtime}-${process.pid}`;
    const tmux = (...args: string[]) => sh('tmux', ['-L', socket, ...args]);
    const flynnLine = (args: string) => `node --import ${TSX} ${MAIN} ${args}`;
    const pane = async () => (await tmux('capture-pane', '-p', '-t', 's')).stdout;

    /** Start `flynn ARGS` in a fresh 100x30 tmux session; its exit status lands in `<dir>/status`. */
    const inTerminal = async (args: string) => {
      await rm(join(dir, 'status'), { force: true });
      await tmux('kill-session', '-t', 's');
      const cmd = `env FLYNNRC=${env.FLYNNRC} HOME=${dir} ${flynnLine(args)}; echo $? > ${join(dir, 'status')}; sleep 30`;
      const started = await tmux('new-session', '-d', '-s', 's', '-x', '100', '-y', '30', cmd);
      expect(started.code, started.stderr).toBe(0);
    };
    /** Wait until the pane shows `pattern`; on a timeout the error shows the pane. */
    const shows = async (what: string, pattern: RegExp, timeoutMs = 60_000) => {
      let last = '';
      await until(
        what,
        async () => {
          last = await pane();
          return pattern.test(last) ? true : undefined;
        },
        timeoutMs,
      ).catch((err: Error) => Promise.reject(new Error(`${err.message}; the terminal shows:\n${last}`)));
    };
    const status = () => until('the exit status', async () => readFile(join(dir, 'status'), 'utf8').then((s) => Number(s.trim()), () => undefined));

    beforeAll(async () => {
      cluster = await createTestCluster({ runtime });
      // The server outlives each test's session: killed as the last one, it could still be exiting when the next test starts one.
      expect((await tmux('start-server', ';', 'set-option', '-g', 'exit-empty', 'off')).code).toBe(0);
      dir = await mkdtemp(join(tmpdir(), 'flynn-runtty-'));
      env = { ...process.env, FLYNNRC: join(dir, 'flynnrc.json'), HOME: dir };
      expect((await sh(process.execPath, ['--import', TSX, MAIN, ...serverAddArgs(cluster, 'test')], env)).code).toBe(0);
      // A release without a slug runs on the stack image (Debian, bash), or on the host, with the release env.
      await cluster.client.createApp({ name: 'shell' });
      const release = await cluster.client.createRelease('shell', { env: { GREETING: 'from-the-release' } });
      await cluster.client.waitForDeployment('shell', (await cluster.client.deploy('shell', release.id)).id);
    }, 180_000);

    afterAll(async () => {
      await tmux('kill-server');
      await cluster?.close();
      if (cluster) await removeTestContainers(cluster.runId);
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('runs bash in a pseudo-terminal: typed commands run, the window size follows, exit 3 is the exit status', async () => {
      await inTerminal('run -a shell bash');
      await shows('the bash prompt', /:\S*[#$] ?$/m);
      await tmux('send-keys', '-t', 's', 'echo $((6*7)) $GREETING', 'Enter');
      await shows('42', /^42 from-the-release$/m);
      await tmux('send-keys', '-t', 's', 'tty; stty size', 'Enter');
      await shows('the tty and its size', /\/dev\/pts\/\d+\n30 100\n/);
      await tmux('resize-window', '-t', 's', '-x', '120', '-y', '40');
      // Asked again until the job's terminal has the new width: each answer is numbered, so an old one is never read.
      let asked = 0;
      await until('the new size', async () => {
        const n = ++asked;
        await tmux('send-keys', '-t', 's', `clear; echo "cols-${n}=$(tput cols)"`, 'Enter');
        const answer = new RegExp(`^cols-${n}=(\\d+)$`, 'm');
        await shows(`answer ${n} of tput cols`, answer);
        return answer.exec(await pane())?.[1] === '120' ? true : undefined;
      });
      await tmux('send-keys', '-t', 's', 'exit 3', 'Enter');
      expect(await status()).toBe(3);
    }, 120_000);

    it('Ctrl-C ends a sleep 100 promptly, through the terminal', async () => {
      // Typed once the job's output reaches the terminal (attached); a Ctrl-C that did not reach it would leave it its 100 s.
      await inTerminal(`run -a shell sh -c 'echo sleeping; exec sleep 100'`);
      await shows('the job attached', /^sleeping\r?$/m);
      await tmux('send-keys', '-t', 's', 'C-c');
      expect(await status()).toBe(130);
    }, 120_000);

    it('Ctrl-D reaches the job as end of input', async () => {
      await inTerminal('run -a shell cat');
      await until('the job', async () => ((await cluster.client.listJobs('shell')).some((j) => j.type === 'run' && j.state === 'up') ? true : undefined));
      await tmux('send-keys', '-t', 's', 'typed-line', 'Enter');
      await until('the echo of cat', async () => ((await pane()).match(/typed-line/g)?.length === 2 ? true : undefined));
      await tmux('send-keys', '-t', 's', 'C-d');
      expect(await status()).toBe(0);
    }, 120_000);

    it('streams stdin without a terminal: echo hi | flynn run cat', async () => {
      const piped = await sh('sh', ['-c', `echo hi | ${flynnLine('run -a shell cat')}`], env);
      expect(piped).toEqual({ code: 0, stdout: 'hi\n', stderr: '' });
      const failed = await sh('sh', ['-c', `printf 'a\\nb\\n' | ${flynnLine("run -a shell sh -c 'wc -l; exit 4'")}`], env);
      expect(failed).toMatchObject({ code: 4, stdout: '2\n' });
    }, 120_000);

    it('gives a script the same stream: client.run(app, cmd, { stdin })', async () => {
      const session = cluster.client.run('shell', ['sh', '-c', 'tr a-z A-Z; echo done >&2'], { stdin: 'shout\n' });
      let out = '';
      let err = '';
      for await (const c of session.output) {
        if (c.stream === 'stdout') out += c.data.toString();
        else err += c.data.toString();
      }
      expect(await session.exit).toBe(0);
      expect(out).toBe('SHOUT\n');
      expect(err).toBe('done\n');
      await expect(cluster.client.run('nope', ['true']).exit).rejects.toMatchObject({ code: 'FLYNN_ERR_CONTROLLER_APP_NOT_FOUND' });
    }, 60_000);
  });
}
