/**
 * Real-world Node apps deploy as they do on Heroku: each fixture app is pushed with a real
 * `git push` over SSH into a one-process cluster on Docker, built on the stack image with the
 * npm registry reached over the build container's network, and answers through the router. The
 * failures that used to read as ENOTCACHED give their one-line cause.
 */
import { describe, expect, it } from 'vitest';
import { createTestCluster } from '../../src/bootstrap/index.js';
import { ensureStackImage } from '../../src/host/stack-image.js';
import { getVia, until } from '../bootstrap/deploy-scenario.js';
import { pusher } from '../bootstrap/pusher.js';
import { needDocker } from '../support/services.js';

/** Fixture apps (test/fixtures/apps) that must deploy and answer `Hello from <fixture>`. */
const APPS = ['express-lock', 'express-nolock', 'yarn-classic', 'yarn-berry', 'pnpm-app', 'npm-workspaces', 'native-addon', 'procfile-build', 'devdeps-build'];

if (await needDocker('real Node apps deploy on the stack')) {
  await ensureStackImage();

  describe('real Node apps deploy with git push on the stack (Docker)', () => {
    const { ctx, push } = pusher(() => createTestCluster({ runtime: 'docker' }));
    const answer = (app: string) =>
      until(`${app} to answer through the router`, async () => {
        const r = await getVia(ctx.cluster.routerUrl, `${app}.${ctx.cluster.domain}`);
        return r.status === 200 ? r : undefined;
      });

    it.each(APPS)('%s: pushed, built with its dependencies from the registry, answers', async (fixture) => {
      const pushed = await push(fixture, fixture);
      expect(pushed.code, pushed.output).toBe(0);
      expect(pushed.output).toContain(`=====> ${fixture} deployed to ${ctx.cluster.appUrl(fixture)}`);
      const res = await answer(fixture);
      expect(res.body).toContain(`Hello from ${fixture}`);
    }, 240_000);

    it('a second push of an unchanged app restores node_modules from the build cache', async () => {
      const pushed = await push('express-lock', 'express-again');
      expect(pushed.code, pushed.output).toBe(0);
      const again = await push('express-lock', 'express-again', { existing: true });
      expect(again.code, again.output).toBe(0);
      expect(again.output).toContain('-----> Using the build cache kept on this host');
      expect(again.output).toMatch(/Restoring node_modules from cache/);
      expect(again.output).not.toContain('npm ci');
      expect((await answer('express-again')).body).toContain('Hello from express-lock');
    }, 240_000);

    it('an out-of-sync lock file is refused with one line saying so, and nothing is deployed', async () => {
      const pushed = await push('npm-out-of-sync', 'out-of-sync');
      expect(pushed.code).not.toBe(0);
      expect(pushed.output).toContain('package-lock.json is out of sync with package.json');
      expect(pushed.output).not.toContain('ENOTCACHED');
      expect((await ctx.cluster.client.getApp('out-of-sync')).releaseId).toBeNull();
    }, 240_000);

    it('a dependency missing from the registry is named in one line', async () => {
      const pushed = await push('npm-missing-dep', 'missing-dep');
      expect(pushed.code).not.toBe(0);
      expect(pushed.output).toContain('Build failed: the dependency flynn-ts-no-such-package-e404@^1.0.0 is not in the npm registry (E404)');
    }, 240_000);
  });
}
