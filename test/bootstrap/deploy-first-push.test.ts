/**
 * The first push serves, or says why not: a release with a `web` type starts web=1 with the app's
 * default route on its first deploy (also after `flynn env set` made releases), one without says
 * so and how to add one, and a Procfile written by the build gives the types. Real `git push`
 * over SSH into a one-process cluster on the process runtime; Procfile apps with no dependencies.
 */
import { describe, expect, it } from 'vitest';
import { createTestCluster } from '../../src/bootstrap/index.js';
import { getVia, until } from './deploy-scenario.js';
import { pusher } from './pusher.js';

describe('the first push serves, or says why not (process runtime)', () => {
  const { ctx, push } = pusher(() => createTestCluster({ runtime: 'process' }));
  const answer = (app: string) =>
    until(`${app} to answer through the router`, async () => {
      const r = await getVia(ctx.cluster.routerUrl, `${app}.${ctx.cluster.domain}`);
      return r.status === 200 ? r : undefined;
    });

  it('starts web=1 with the default route when env set made releases before the first push', async () => {
    const { client } = ctx.cluster;
    await client.createApp({ name: 'env-first' });
    const set = await client.setEnv('env-first', { GREETING: 'hi' });
    if (set.deployment) await client.waitForDeployment('env-first', set.deployment.id);
    expect((await client.getApp('env-first')).releaseId).not.toBeNull();
    const pushed = await push('procfile-web', 'env-first', { existing: true });
    expect(pushed.code, pushed.output).toBe(0);
    expect(pushed.remote).toContain('-----> Deploying v2 (web=1)...');
    expect(pushed.remote).toContain(`=====> env-first deployed to ${ctx.cluster.appUrl('env-first')}`);
    expect(await client.listRoutes('env-first')).toEqual([expect.objectContaining({ type: 'http', domain: `env-first.${ctx.cluster.domain}`, service: 'env-first-web' })]);
    // "deployed" means reachable: the first request through the router is answered, with the env set before.
    const res = await getVia(ctx.cluster.routerUrl, `env-first.${ctx.cluster.domain}`);
    expect(res).toEqual({ status: 200, body: 'Hello from procfile-web (GREETING=hi)\n' });
  }, 120_000);

  it('says a release has no web process, names its types and how to add one, instead of a URL', async () => {
    const pushed = await push('procfile-worker', 'workers');
    expect(pushed.code, pushed.output).toBe(0);
    expect(pushed.output).not.toContain('deployed to');
    const url = ctx.cluster.appUrl('workers');
    const at = pushed.remote.indexOf(`=====> Released v1, but workers has no web process: nothing answers at ${url}`);
    expect(at, pushed.output).toBeGreaterThan(-1);
    expect(pushed.remote.slice(at + 1, at + 3)).toEqual([
      '       Its process types: worker=0 clock=0 (start one with: flynn -a workers scale worker=1)',
      '       To serve HTTP, add a web process: a "web: <command>" line in a Procfile, a "start" script in package.json, or a server.js',
    ]);
    expect(await ctx.cluster.client.listRoutes('workers')).toEqual([]);
  }, 120_000);

  it('takes the process types from the Procfile the build wrote, not from the pushed tree', async () => {
    const pushed = await push('dynamic-procfile', 'dyn-procfile');
    expect(pushed.code, pushed.output).toBe(0);
    expect(pushed.remote).toContain('       Procfile declares types -> web, worker');
    expect(pushed.remote).toContain(`=====> dyn-procfile deployed to ${ctx.cluster.appUrl('dyn-procfile')}`);
    expect(Object.keys((await ctx.cluster.client.currentRelease('dyn-procfile')).processes).sort()).toEqual(['web', 'worker']);
    expect((await answer('dyn-procfile')).body).toBe('Hello from dynamic-procfile\n');
  }, 120_000);
});
