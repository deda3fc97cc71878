import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packDir } from '../../src/slug/archive.js';
import { slugRunnerCommand } from '../../src/slug/runner.js';
import { PROCESS_COMMANDS_DIR, PROCESS_TYPES_FILE } from '../../src/slug/types.js';

/** Run `start <type>` of a slug as a host process; its pid, exit code and output. */
function start(type: string, env: Record<string, string>): Promise<{ pid: number; code: number | null; out: string }> {
  const [cmd, ...args] = slugRunnerCommand(type);
  const child = spawn(cmd!, args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d));
  child.stderr.on('data', (d: Buffer) => (out += d));
  return new Promise((resolve) => child.once('close', (code) => resolve({ pid: child.pid!, code, out })));
}

describe('the slug runner’s shell front', () => {
  let dir: string;
  /** Prints its own pid ($$): the runner's pid when no node stands in between. */
  const web = 'echo "pid=$$ home=$HOME port=$PORT profile=$FROM_PROFILE"';

  async function slug(name: string, files: Record<string, string>): Promise<string> {
    const src = path.join(dir, `${name}-src`);
    for (const [f, body] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(src, f)), { recursive: true });
      await writeFile(path.join(src, f), body);
    }
    const file = path.join(dir, `${name}.tgz`);
    await packDir(src, file);
    return file;
  }

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'flynn-runner-sh-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('starts a type of a file:// slug by exec, with no node in between, after .profile.d', async () => {
    const file = await slug('fast', {
      [`${PROCESS_COMMANDS_DIR}/web`]: web,
      [PROCESS_TYPES_FILE]: JSON.stringify({ web }),
      '.profile.d/a.sh': 'export FROM_PROFILE=yes\n',
    });
    const appDir = path.join(dir, 'app-fast');
    const { pid, code, out } = await start('web', { SLUG_URL: `file://${file}`, APP_DIR: appDir });
    expect(code).toBe(0);
    expect(out.trim()).toBe(`pid=${pid} home=${appDir} port=8080 profile=yes`);
  });

  it('hands a slug without per-type command files to the node runner, which starts it all the same', async () => {
    const file = await slug('older', { [PROCESS_TYPES_FILE]: JSON.stringify({ web }), '.profile.d/a.sh': 'export FROM_PROFILE=yes\n' });
    const appDir = path.join(dir, 'app-older');
    const { pid, code, out } = await start('web', { SLUG_URL: `file://${file}`, APP_DIR: appDir, PORT: '5001' });
    expect(code).toBe(0);
    expect(out).toContain(`home=${appDir} port=5001 profile=yes`);
    expect(out).not.toContain(`pid=${pid} `);
  });

  it('hands a stop (SIGTERM to the runner, as a container\'s init sends it) to the app itself, by both runners', async () => {
    // An app that shuts down cleanly on SIGTERM; `$PORT` keeps it a simple command (exec'd).
    const app = 'process.on("SIGTERM", () => { console.log("clean stop"); process.exit(0) }); console.log("up"); setInterval(() => {}, 1000)';
    await writeFile(path.join(dir, 'app.js'), app);
    const web = `node ${path.join(dir, 'app.js')} --port $PORT`;
    const fast = await slug('term', { [`${PROCESS_COMMANDS_DIR}/web`]: web, [PROCESS_TYPES_FILE]: JSON.stringify({ web }) });
    const older = await slug('term-older', { [PROCESS_TYPES_FILE]: JSON.stringify({ web }) });
    for (const [name, file] of [['shell front', fast], ['node runner', older]] as const) {
      const [cmd, ...args] = slugRunnerCommand('web');
      const child = spawn(cmd!, args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', SLUG_URL: `file://${file}`, APP_DIR: path.join(dir, `app-term-${name.replace(' ', '-')}`) }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d));
      child.stderr.on('data', (d: Buffer) => (out += d));
      const closed = new Promise<number | null>((resolve) => child.once('close', resolve));
      const deadline = Date.now() + 10_000;
      while (!out.includes('up') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      child.kill('SIGTERM'); // the runner's pid only, not its group
      expect(await closed, `${name}: ${out}`).toBe(0);
      expect(out, name).toContain('clean stop');
    }
  });

  it('runs a compound command as written', async () => {
    const web = 'echo one; echo "two $PORT" | tr a-z A-Z';
    const file = await slug('compound', { [`${PROCESS_COMMANDS_DIR}/web`]: web, [PROCESS_TYPES_FILE]: JSON.stringify({ web }) });
    const { code, out } = await start('web', { SLUG_URL: `file://${file}`, APP_DIR: path.join(dir, 'app-compound'), PORT: '7' });
    expect(code).toBe(0);
    expect(out).toBe('one\nTWO 7\n');
  });

  it('lets the node runner explain a type the slug does not have', async () => {
    const file = await slug('types', { [`${PROCESS_COMMANDS_DIR}/web`]: web, [PROCESS_TYPES_FILE]: JSON.stringify({ web }) });
    const { code, out } = await start('worker', { SLUG_URL: `file://${file}`, APP_DIR: path.join(dir, 'app-types') });
    expect(code).toBe(1);
    expect(out).toContain('slugrunner: the slug has no process type "worker" (it has: web)');
  });

  it('exits 1 and says so when the slug cannot be unpacked', async () => {
    const bad = path.join(dir, 'bad.tgz');
    await writeFile(bad, 'not a tarball');
    const appDir = path.join(dir, 'app-bad');
    const { code, out } = await start('web', { SLUG_URL: `file://${bad}`, APP_DIR: appDir });
    expect(code).toBe(1);
    expect(out).toContain(`slugrunner: unpacking the slug into ${appDir} failed`);
  });
});
