/**
 * A slug damaged in shelf (its file truncated in the blob store's directory): a job started on it
 * fails in one line that names the slug, both digests and the fix, which `flynn log` and a failed
 * deploy show; the scheduler's crash backoff applies; a push afterwards (a new slug) deploys.
 * Real `git push` over SSH into a one-process cluster (process and Docker runtimes, shelf on disk).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, truncate } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { createTestCluster, serverAddArgs } from '../../src/bootstrap/index.js';
import type { Job } from '../../src/controller/types.js';
import { needDocker } from '../support/services.js';
import { pusher } from './pusher.js';

const exec = promisify(execFile);
const TSX = pathToFileURL(resolve('node_modules/tsx/dist/loader.mjs')).href;
const CLI = resolve('src/cli/main.ts');
const DAMAGED_LINE = String.raw`the slug /slugs/shop/[0-9a-f-]{36}\.tgz is damaged \(sha256 [0-9a-f]{64}, expected [0-9a-f]{64}\): push the app again, \x60flynn rollback\x60 to a release built before it, or restore shelf from a \x60flynn cluster backup\x60`;
const DAMAGED = new RegExp(`^${DAMAGED_LINE}$`);

function describeDamagedSlug(runtime: 'process' | 'docker'): void {
  describe(`a damaged slug in shelf (${runtime} runtime)`, () => {
    const { ctx, push, logs } = pusher(() => createTestCluster({ runtime }));
    let slugFile = '';

    it("records the slug's sha256 in its artifact", async () => {
      const pushed = await push('node-hello', 'shop');
      expect(pushed.code, pushed.output).toBe(0);
      const c = ctx.cluster.client;
      const release = await c.getRelease('shop', (await c.getApp('shop')).releaseId as string);
      const artifact = await c.getArtifact(release.artifactId as string);
      slugFile = join(ctx.cluster.dataDir, 'shelf', new URL(artifact.url).pathname);
      expect(artifact.sha256).toBe(createHash('sha256').update(await readFile(slugFile)).digest('hex'));
    }, 120_000);

    it('fails a job started on the truncated slug in one line, shown by flynn log and by the failed deploy, with backoff', async () => {
      const c = ctx.cluster.client;
      // The real CLI, as the user runs it.
      const env = { ...process.env, FLYNNRC: join(ctx.dir, 'flynnrc'), HOME: ctx.dir };
      const flynn = (...args: string[]) =>
        exec(process.execPath, ['--import', TSX, CLI, ...args], { env, cwd: ctx.dir }).then(
          (r) => ({ code: 0, ...r }),
          (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
        );
      expect((await flynn(...serverAddArgs(ctx.cluster, 'c'))).code).toBe(0);
      await truncate(slugFile, 100);
      const started = Date.now();
      // `flynn scale` ends at the first failed start with why, not after its 60 s wait.
      const scaled = await flynn('scale', '-a', 'shop', 'web=2');
      expect(scaled.code, scaled.stderr).toBe(1);
      expect(scaled.stderr).toMatch(new RegExp(`^flynn: scaled shop to web=2, but \\d web jobs? failed to start instead of coming up: the last, \\S+: ${DAMAGED_LINE} \\(see flynn log -a shop \\S+\\)\n$`));
      expect(Date.now() - started).toBeLessThan(30_000);
      const failed = async () => (await c.listJobs('shop', { all: true })).filter((j: Job) => j.state === 'failed');
      const [first] = await failed();
      expect(await logs('shop', (first as Job).id)).toEqual([expect.stringMatching(DAMAGED)]);
      // `flynn ps --all` says why, once; `flynn log JOB` is that line.
      const ps = (await flynn('ps', '-a', 'shop', '--all')).stdout.trim().split('\n');
      expect(ps.filter((l) => / failed to start: /.test(l))).toEqual([expect.stringMatching(new RegExp(`^\\S+ failed to start: ${DAMAGED_LINE}$`))]);
      expect((await flynn('log', '-a', 'shop', (first as Job).id)).stderr).toMatch(new RegExp(`^${DAMAGED_LINE}\n$`));
      // A one-off job (`flynn run`) on that slug says it too, and fails.
      const run = await flynn('run', '-a', 'shop', 'true');
      expect(run.code, run.stderr).toBe(1);
      expect(run.stderr).toMatch(new RegExp(DAMAGED_LINE));

      // A new release on the same slug (an env change) fails its deploy with that line, not a boot timeout.
      const change = await c.updateEnv('shop', { set: { GREETING: 'hi' } });
      const err = await c.waitForDeployment('shop', change.deployment?.id as string, { timeoutMs: 60_000 }).catch((e: unknown) => e);
      expect((err as Error).message).toMatch(new RegExp(`^web job \\S+ of the new release failed to start: ${DAMAGED_LINE}$`));

      // The crash backoff on the formation's job: 3 restarts at once, then after 1 s, 2 s, 4 s... — not a hot loop.
      await new Promise((r) => setTimeout(r, Math.max(0, started + 8000 - Date.now())));
      const starts = (await failed()).filter((j) => j.type === 'web' && j.releaseId === (first as Job).releaseId).map((j) => Date.parse(j.createdAt)).sort((a, b) => a - b);
      const shown = `failed starts at ${starts.map((t) => ((t - started) / 1000).toFixed(2)).join(' ')} s`;
      expect(starts.length, shown).toBeGreaterThanOrEqual(5);
      expect(starts.length, shown).toBeLessThanOrEqual(9);
      for (let k = 4; k < starts.length; k++) expect((starts[k] as number) - (starts[k - 1] as number), shown).toBeGreaterThanOrEqual(900);
    }, 120_000);

    it('deploys a push afterwards (a new slug)', async () => {
      const pushed = await push('node-hello', 'shop', { existing: true });
      expect(pushed.code, pushed.output).toBe(0);
      await waitFor(async () => (await ctx.cluster.client.listJobs('shop')).filter((j) => j.state === 'up').length === 2, 30_000);
    }, 120_000);
  });
}

describeDamagedSlug('process');
if (await needDocker('a damaged slug on docker')) describeDamagedSlug('docker');

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
