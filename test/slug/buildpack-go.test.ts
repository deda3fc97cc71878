/**
 * The Go buildpack: real `git push` of a Go module with a vendored dependency and two main
 * packages to a Docker cluster whose builds have no network (`buildNetwork: 'none'`: vendor/ is
 * all it needs), answering through the router; its binaries are the process types. Go is not in
 * the default stack (about 450 MB): this suite runs on the stack variant with Go,
 * flynn-ts/stack-golang-go:latest (`npm run images -- --only stack --with golang-go`), and is
 * skipped (saying so) when that is not built, except in CI (`CI=true`), where it fails.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { createTestCluster } from '../../src/bootstrap/index.js';
import { getVia, until } from '../bootstrap/deploy-scenario.js';
import { pusher } from '../bootstrap/pusher.js';
import { needDocker } from '../support/services.js';

const exec = promisify(execFile);

const GO_STACK = 'flynn-ts/stack-golang-go:latest';

async function stackHasGo(): Promise<boolean> {
  const has = await exec('docker', ['run', '--rm', '--label', 'io.flynn-ts.test=1', '--network', 'none', GO_STACK, 'sh', '-c', 'command -v go'])
    .then(() => true)
    .catch(() => false);
  const howTo = `Build it with \`npm run images -- --only stack --with golang-go\` (bash .ci/run does)`;
  if (!has && process.env.CI === 'true') throw new Error(`Go buildpack: ${GO_STACK} is not built. ${howTo}.`);
  if (!has) console.warn(`[skipped] Go buildpack: ${GO_STACK} is not built. ${howTo} to run this suite.`);
  return has;
}

describe.runIf((await needDocker('Go buildpack')) && (await stackHasGo()))('go buildpack on the stack with Go', () => {
  const { ctx, push } = pusher(() => createTestCluster({ runtime: 'docker', buildNetwork: 'none', image: GO_STACK }));

  it('builds a module with a vendored dependency offline, makes its binaries the process types, and reuses the build cache', async () => {
    const cold = await push('go-vendored', 'gohello');
    expect(cold.code, cold.output).toBe(0);
    expect(cold.remote).toContain('-----> Go app detected');
    expect(cold.remote).toContain('-----> Building with the modules in vendor/');
    expect(cold.remote).toContain('       binaries: gohello worker');
    expect(cold.remote).toContain('       Default types for buildpack -> web, worker');
    const release = await ctx.cluster.client.currentRelease('gohello');
    expect(release.processes).toEqual({ web: { cmd: ['/bin/sh', '-c', 'bin/gohello'] }, worker: { cmd: ['/bin/sh', '-c', 'bin/worker'] } });
    const answer = () =>
      until('gohello to answer through the router', async () => {
        const r = await getVia(ctx.cluster.routerUrl, `gohello.${ctx.cluster.domain}`);
        return r.status === 200 ? r : undefined;
      });
    expect((await answer()).body).toMatch(/^Hello from go-vendored \(go1\.\d+(\.\d+)?\)\n$/);

    const cached = await push('go-vendored', 'gohello', { existing: true });
    expect(cached.code, cached.output).toBe(0);
    expect(cached.remote).toContain('       reusing the build cache');
    expect((await answer()).body).toMatch(/^Hello from go-vendored/);
    console.log(`go-vendored push (build + deploy): cold ${cold.ms} ms, cached ${cached.ms} ms`);
  }, 180_000);
});
