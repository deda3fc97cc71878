/**
 * What a pusher sees when a deploy fails: a web process that never answers on $PORT (boot
 * timeout), a web process that crashes on a syntax error, and an `npm install` that fails. Real
 * `git push` over SSH into a cluster (process runtime; Docker where the behaviour differs).
 */
import { describe, expect, it } from 'vitest';
import { createTestCluster } from '../../src/bootstrap/index.js';
import { ManualClock } from '../../src/common/clock.js';
import { FormationDeployer, type FormationDeployerOptions } from '../../src/controller/deployer.js';
import { errorExcerpt } from '../../src/controller/deployer-failure.js';
import type { App, Job, LogLine } from '../../src/controller/types.js';
import { needDocker } from '../support/services.js';
import { pusher, type Pushed } from './pusher.js';

/** The job a boot timeout message names, and the $PORT it gives. */
function bootTimeout(pushed: Pushed): { jobId: string; port: number } {
  const m = /web job (\S+) of the new release did not answer on \$PORT \((\d+)\) within 3 s \(boot timeout\)/.exec(pushed.output);
  expect(m, pushed.output).not.toBeNull();
  return { jobId: m?.[1] as string, port: Number(m?.[2]) };
}

/** Lines that say why a push failed (` !     ...`), warnings aside. */
const failureLines = (p: Pushed) => p.remote.filter((l) => /^ ! {5}(?!Warning:)/.test(l));

describe('a failed deploy tells the pusher why (process runtime)', () => {
  // Builds told they have no network (`buildNetwork: 'none'`): npm-fails's registry dependency cannot install.
  const { ctx, push, logs } = pusher(() => createTestCluster({ runtime: 'process', buildNetwork: 'none' }));

  it('names a web job that never answers on $PORT, with its port, its output and a hint, after the boot timeout', async () => {
    const pushed = await push('wrong-port', 'wrong-port', { meta: { deploy_timeout: '3' } });
    expect(pushed.code).not.toBe(0);
    const { jobId, port } = bootTimeout(pushed);
    expect(port).toBeGreaterThan(0);
    expect(pushed.output).toContain('Does the app listen on $PORT?');
    expect(pushed.output).toContain(`(${port} for this job)`);
    const at = pushed.remote.indexOf('       Its last output:');
    expect(pushed.remote[at + 1]).toMatch(/^ +wrong-port listening on port \d+, not on \$PORT$/);
    expect(pushed.output).toContain(`flynn log -a wrong-port ${jobId}`);
    expect(pushed.output).not.toContain('new jobs were not up');
    expect((await ctx.cluster.client.getApp('wrong-port')).releaseId).toBeNull();
  }, 60_000);

  it('keeps the job that failed to boot in ps (crashed) and its output readable with flynn log afterwards', async () => {
    const jobs = await ctx.cluster.client.listJobs('wrong-port');
    expect(jobs).toEqual([expect.objectContaining({ type: 'web', state: 'crashed' })]);
    const jobId = (jobs[0] as { id: string }).id;
    // Gone from the scheduler by now: the deployer removed the release's formation.
    expect(ctx.cluster.scheduler.view().formations.flatMap((f) => f.processes.flatMap((p) => p.jobs.map((j) => j.id)))).not.toContain(jobId);
    expect(await logs('wrong-port', jobId)).toEqual([expect.stringMatching(/^wrong-port listening on port \d+, not on \$PORT$/)]);
    expect(await logs('wrong-port')).toEqual([expect.stringContaining('wrong-port listening on port')]);
  });

  it('shows the file:line, the source line and the caret of a web process that crashes on a syntax error', async () => {
    const pushed = await push('syntax-error', 'syntax-error');
    expect(pushed.code).not.toBe(0);
    expect(pushed.output).toMatch(/web job \S+ of the new release crashed/);
    // The slug's path: /app in a container, the job's own app dir on the process runtime.
    const at = pushed.remote.findIndex((l) => /^ {7}file:\/\/\/(\S+\/)?app\/server\.js:7$/.test(l));
    expect(at, pushed.output).toBeGreaterThan(-1);
    expect(pushed.remote[at + 1]).toBe("       let greeting = 'hello again';");
    expect(pushed.remote[at + 2]).toBe('           ^');
    expect(pushed.output).toContain("SyntaxError: Identifier 'greeting' has already been declared");
    // The error starts the excerpt: nothing of the job's output before it.
    expect(pushed.remote[at - 1]?.trim()).toBe('Its last output:');
  }, 60_000);

  it('rejects a failed npm install with one failure line that points at no file', async () => {
    const pushed = await push('npm-fails', 'npm-fails');
    expect(pushed.code).not.toBe(0);
    expect(pushed.output).toContain('npm error code ENOTCACHED');
    expect(failureLines(pushed)).toEqual([expect.stringMatching(/^ ! {5}Build failed: npm install exited with status 1 \(see its output above\)/)]);
    expect(pushed.output).not.toMatch(/complete log of this run|Log files were not written|debug-0\.log/);
    expect(pushed.output).not.toMatch(/\/tmp\/|flynn-build-/);
  }, 60_000);

  it('rejects a push to an app whose deploy_timeout is not a number of seconds, before building it', async () => {
    const pushed = await push('node-hello', 'bad-timeout', { meta: { deploy_timeout: 'soon' } });
    expect(pushed.code).not.toBe(0);
    expect(failureLines(pushed)).toEqual([' !     app bad-timeout has meta deploy_timeout="soon": it must be a whole number of seconds, 1-3600']);
    expect(pushed.output).not.toContain('-----> ');
  }, 60_000);

  it("keeps a replaced job's output readable after a redeploy stopped it", async () => {
    expect((await push('node-hello', 'redeployed')).code).toBe(0);
    const [first] = await ctx.cluster.client.listJobs('redeployed');
    const release = await ctx.cluster.client.currentRelease('redeployed');
    await ctx.cluster.client.waitForDeployment('redeployed', (await ctx.cluster.client.deploy('redeployed', (await ctx.cluster.client.createRelease('redeployed', { artifactId: release.artifactId as string, env: { REDEPLOYED: '1' } })).id)).id);
    expect((await ctx.cluster.client.listJobs('redeployed')).map((j) => j.id)).not.toContain(first?.id);
    expect(await logs('redeployed', first?.id)).toEqual([expect.stringContaining('node-hello listening on')]);
  }, 60_000);
});

describe('errorExcerpt picks the lines of a failed job that say why', () => {
  const nodeSyntaxError = [
    '/app/server.js:1',
    "const greeting = 'hello' +;",
    '                          ^',
    '',
    "SyntaxError: Unexpected token ';'",
    ...Array.from({ length: 7 }, (_, i) => `    at frame${i} (node:internal/modules/cjs/loader:${i}:1)`),
    '',
    'Node.js v20.20.2',
  ];

  it('starts at the file:line header of an error, not at the output before it', () => {
    const noise = Array.from({ length: 40 }, (_, i) => `booting step ${i}`);
    expect(errorExcerpt([...noise, ...nodeSyntaxError, '', ''])).toEqual(nodeSyntaxError);
  });

  it('keeps the start of an error report too long to show whole, and says how much is cut', () => {
    const long = [...nodeSyntaxError.slice(0, 5), ...Array.from({ length: 60 }, (_, i) => `    at deep${i} (/app/x.js:${i}:1)`)];
    const got = errorExcerpt(long, 30);
    expect(got).toHaveLength(30);
    expect(got.slice(0, 3)).toEqual(nodeSyntaxError.slice(0, 3));
    expect(got.at(-1)).toBe('… 36 more lines');
  });

  it('shows the last lines when nothing looks like an error', () => {
    const lines = Array.from({ length: 50 }, (_, i) => `line ${i}`);
    expect(errorExcerpt(lines, 30)).toEqual(lines.slice(-30));
  });

  it('starts a Python traceback at its first line', () => {
    const tb = ['Traceback (most recent call last):', '  File "/app/app.py", line 3, in <module>', '    import flask', "ModuleNotFoundError: No module named 'flask'"];
    expect(errorExcerpt(['starting', ...tb])).toEqual(tb);
  });
});

describe('FormationDeployer boot timeout with a job runner that cannot diagnose boots', () => {
  const app: App = { id: 'a1', name: 'plain', meta: {}, releaseId: null, strategy: 'all-at-once', createdAt: '', updatedAt: '' };
  const plan = { deploymentId: 'd1', app, strategy: 'all-at-once' as const, from: null, to: { releaseId: 'r2', processes: { web: 1 } } };
  const formations: string[] = [];
  const options = { writeFormations: async (writes: Array<{ releaseId: string; processes: Record<string, number> | null }>) => void formations.push(...writes.map((w) => `${w.processes ? 'put' : 'delete'} ${w.releaseId}`)) };
  // The jobs as they stay, until the deploy stops waiting.
  const runner = (jobs: Job[], output: string[]): FormationDeployerOptions['jobs'] => ({
    watchJobs: (_app, o = {}) =>
      (async function* () {
        yield jobs;
        await new Promise((resolve) => o.signal?.addEventListener('abort', resolve, { once: true }));
      })(),
    logs: async () =>
      (async function* (): AsyncGenerator<LogLine> {
        for (const msg of output) yield { jobId: 'j1', type: 'web', stream: 'stdout', msg, time: '' };
      })(),
  });

  it('names the job that was not up, with its output, having only put the new formation (the deployment manager removes it)', async () => {
    const job: Job = { id: 'j1', appId: 'a1', releaseId: 'r2', type: 'web', state: 'starting', createdAt: '' };
    const clock = new ManualClock();
    const deployer = new FormationDeployer({ jobs: runner([job], ['still warming up']), timeoutMs: 100, clock });
    const deploying = deployer.deploy(plan, options).catch((e: unknown) => e);
    await clock.sleeping();
    await clock.advance(100);
    await expect(Promise.reject(await deploying)).rejects.toThrow(/^web job j1 of the new release was not up within 0\.1 s \(boot timeout\)\n {7}Its last output:\n {7}still warming up\n/);
    expect(formations).toEqual(['put r2']);
  });

  it('points a crash of a busy port (EADDRINUSE) at $PORT', async () => {
    const job: Job = { id: 'j1', appId: 'a1', releaseId: 'r2', type: 'web', state: 'crashed', createdAt: '' };
    const deployer = new FormationDeployer({ jobs: runner([job], ['Error: listen EADDRINUSE: address already in use :::3999']), timeoutMs: 1000 });
    await expect(deployer.deploy(plan, options)).rejects.toThrow(/^web job j1 of the new release crashed\n {7}Its port was already in use \(EADDRINUSE\): does the app listen on \$PORT\?/);
  });

  it('says when no job of the new release was started at all', async () => {
    const clock = new ManualClock();
    const deployer = new FormationDeployer({ jobs: runner([], []), timeoutMs: 100, clock });
    const deploying = deployer.deploy(plan, options).catch((e: unknown) => e);
    await clock.sleeping();
    await clock.advance(100);
    await expect(Promise.reject(await deploying)).rejects.toThrow("the new release's jobs were not started within 0.1 s (boot timeout): want web=1, up web=0");
  });
});

describe('FormationDeployer holds new jobs up before a step is done', () => {
  const app: App = { id: 'a1', name: 'brief', meta: {}, releaseId: 'r1', strategy: 'one-by-one', createdAt: '', updatedAt: '' };
  const up: Job = { id: 'j1', appId: 'a1', releaseId: 'r2', type: 'web', state: 'up', createdAt: '' };
  /**
   * A job runner whose job list the test changes with `set`; every watcher sees each change.
   * `holding()` resolves once the hold watches (the second watch: the first waited for the job to be up).
   */
  const changing = (output: string[]) => {
    let jobs: Job[] = [up];
    const wake = new Set<() => void>();
    let opened = 0;
    let onSecond: () => void = () => {};
    const second = new Promise<void>((resolve) => (onSecond = resolve));
    const runner: FormationDeployerOptions['jobs'] = {
      watchJobs: (_app, o = {}) =>
        (async function* () {
          if (++opened === 2) onSecond();
          while (!o.signal?.aborted) {
            const shown = jobs;
            yield shown;
            if (jobs !== shown) continue;
            await new Promise<void>((resolve) => {
              wake.add(resolve);
              o.signal?.addEventListener('abort', () => resolve(), { once: true });
            });
          }
        })(),
      logs: async () =>
        (async function* (): AsyncGenerator<LogLine> {
          for (const msg of output) yield { jobId: 'j1', type: 'web', stream: 'stdout', msg, time: '' };
        })(),
    };
    const set = (next: Job[]) => {
      jobs = next;
      for (const w of wake) w();
      wake.clear();
    };
    return { runner, set, holding: () => second };
  };
  const start = (runner: FormationDeployerOptions['jobs'], clock: ManualClock) => {
    const formations: string[] = [];
    const plan = { deploymentId: 'd1', app, strategy: 'one-by-one' as const, from: { appId: 'a1', releaseId: 'r1', processes: { web: 1 }, updatedAt: '' }, to: { releaseId: 'r2', processes: { web: 1 } } };
    const writeFormations = async (writes: Array<{ releaseId: string; processes: Record<string, number> | null }>) => void formations.push(...writes.map((w) => `${w.releaseId} ${JSON.stringify(w.processes)}`));
    const deploying = new FormationDeployer({ jobs: runner, clock }).deploy(plan, { writeFormations }).then(
      () => 'done',
      (e: unknown) => e as Error,
    );
    return { formations, deploying };
  };

  it('lowers the old release only once the new job has stayed up for the hold (1 s)', async () => {
    const clock = new ManualClock();
    const { runner, holding } = changing([]);
    const { formations, deploying } = start(runner, clock);
    await holding();
    await clock.advance(999);
    expect(formations).toEqual(['r2 {"web":1}']);
    await clock.advance(1);
    expect(await deploying).toBe('done');
    expect(formations).toEqual(['r2 {"web":1}', 'r1 {"web":0}']);
  });

  it('fails the deploy, the old release untouched, when the new job answers and then crashes within the hold', async () => {
    const clock = new ManualClock();
    const { runner, set, holding } = changing(['listening', 'leaving on purpose']);
    const { formations, deploying } = start(runner, clock);
    await holding();
    await clock.advance(300);
    set([{ ...up, state: 'crashed', exit: { code: 5, reason: 'exit' } }]);
    const err = await deploying;
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/^web job j1 of the new release crashed with status 5\n {7}It came up, then ended before the deploy was done \(each new job must stay up 1 s\): the old release keeps serving\.\n {7}Its last output:\n {7}listening\n {7}leaving on purpose\n/);
    expect(formations).toEqual(['r2 {"web":1}']);
  });

  it('does not wait when the new release has no processes (an env change of an app without any)', async () => {
    const clock = new ManualClock();
    const { runner } = changing([]);
    const plan = { deploymentId: 'd1', app, strategy: 'all-at-once' as const, from: null, to: { releaseId: 'r2', processes: {} } };
    await new FormationDeployer({ jobs: { ...runner, watchJobs: () => (async function* () { yield []; })() }, clock }).deploy(plan, { writeFormations: async () => {} });
    expect(clock.pending).toBe(0);
  });

  it("names the exit status its host recorded when the scheduler's view has none yet", async () => {
    const clock = new ManualClock();
    const { runner, set, holding } = changing([]);
    runner.listJobs = async () => [{ ...up, state: 'crashed', exit: { code: 137, reason: 'oom' } }];
    const { deploying } = start(runner, clock);
    await holding();
    set([{ ...up, state: 'crashed' }]);
    expect(((await deploying) as Error).message).toMatch(/^web job j1 of the new release crashed with status 137 \(out of memory\)\n/);
  });

  it('fails it too when the new job leaves up without a crash (exit 0)', async () => {
    const clock = new ManualClock();
    const { runner, set, holding } = changing([]);
    const { deploying } = start(runner, clock);
    await holding();
    set([{ ...up, state: 'down', exit: { code: 0, reason: 'exit' } }]);
    expect(((await deploying) as Error).message).toMatch(/^web job j1 of the new release exited with status 0\n {7}It came up, then ended before the deploy was done/);
  });
});

const docker = await needDocker('deploy failures on docker');

describe.runIf(docker)('a web job that never answers on $PORT fails its deploy on Docker too', () => {
  const { ctx, push, logs } = pusher(() => createTestCluster({ runtime: 'docker' }));

  it("names the job and the container's $PORT (8080), shows its output, and keeps it readable", async () => {
    const pushed = await push('wrong-port', 'wrong-port', { meta: { deploy_timeout: '3' } });
    expect(pushed.code).not.toBe(0);
    const { jobId, port } = bootTimeout(pushed);
    expect(port).toBe(8080);
    expect(pushed.output).toContain('wrong-port listening on port');
    expect(await logs('wrong-port', jobId)).toEqual([expect.stringContaining('wrong-port listening on port')]);
    expect(await ctx.cluster.client.listJobs('wrong-port')).toEqual([expect.objectContaining({ id: jobId, state: 'crashed' })]);
  }, 120_000);
});
