// The end-to-end build suite, run once per build executor (Docker and process): real buildpacks,
// a real shelf over HTTP on a filesystem store, and the built slugs started with the slug runner.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSlug, type BuildSlugOptions } from '../../src/slug/builder.js';
import { BuildFailedError } from '../../src/slug/errors.js';
import type { BuildExecutor } from '../../src/slug/executor.js';
import type { BuildResult } from '../../src/slug/types.js';
import { getText, slugContents, sourceTar, startTestShelf, type RunningSlug, type TestShelf } from './helpers.js';

export interface BuildSuiteOptions {
  executor: () => Promise<BuildExecutor>;
  /** Loopback address for shelf and the apps' published ports. */
  hostIp: string;
  /** Start process `type` of a built slug and return where it answers. */
  run: (ctx: { shelf: TestShelf; slugPath: string; type: string; env?: Record<string, string> }) => Promise<RunningSlug>;
  /** Whether the `web` type of the procfile-two app (busybox httpd on 0.0.0.0) may be started. */
  runsProcfileWeb: boolean;
  /** Extra checks run once after the suite (leftover containers...). */
  afterAllCheck?: () => Promise<void>;
}

const SECRET = 'tok-7c1e-never-in-a-slug';

export function describeBuilds(name: string, opts: BuildSuiteOptions): void {
  describe(`slug builds on the ${name} executor`, () => {
    let shelf: TestShelf;
    let executor: BuildExecutor;
    const running: RunningSlug[] = [];
    const app = (base: string) => `${base}-${name}`;

    async function build(fixture: string, extra: Partial<BuildSlugOptions> & { files?: Record<string, string>; appName?: string } = {}): Promise<{ result: BuildResult; output: string[] }> {
      const output: string[] = [];
      const { files, appName, ...rest } = extra;
      const result = await buildSlug({
        source: await sourceTar(fixture, files),
        app: appName ?? app(fixture),
        executor,
        shelf: shelf.client,
        onOutput: (line) => output.push(line),
        timeoutMs: 60_000,
        ...rest,
      });
      return { result, output };
    }

    async function start(slugPath: string, type: string, env?: Record<string, string>): Promise<RunningSlug> {
      const r = await opts.run({ shelf, slugPath, type, ...(env ? { env } : {}) });
      running.push(r);
      return r;
    }

    beforeAll(async () => {
      executor = await opts.executor();
      shelf = await startTestShelf(opts.hostIp);
    });
    afterAll(async () => {
      await Promise.all(running.map((r) => r.stop()));
      await shelf?.close();
      await opts.afterAllCheck?.();
    });

    it('builds node-hello and the slug runner serves it on $PORT', async () => {
      const { result, output } = await build('node-hello');
      expect(result.processTypes).toEqual({ web: 'node server.js' });
      expect(result.buildpacks).toEqual(['nodejs']);
      expect(result.cached).toBe(false);
      expect(result.slugPath).toMatch(new RegExp(`^/slugs/${app('node-hello')}/[0-9a-f-]{36}\\.tgz$`));
      expect(result.slugUrl).toBe(`${shelf.shelf.url}${result.slugPath}`);
      expect(output).toContain('-----> Node.js app detected');
      expect(output.some((l) => l.startsWith('-----> Build finished in'))).toBe(true);
      const web = await start(result.slugPath, 'web');
      const res = await getText(web.url);
      expect(res.status).toBe(200);
      expect(res.body).toMatch(/^Hello from flynn-ts on port \d+\n$/);
    });

    it('builds node-dep twice: the second build restores node_modules from the cache and says so', async () => {
      const first = await build('node-dep');
      expect(first.result.cached).toBe(false);
      expect(first.output.join('\n')).toContain('npm ci');
      const second = await build('node-dep');
      expect(second.result.cached).toBe(true);
      expect(second.output).toContain('-----> Restoring node_modules from cache (unchanged package-lock.json)');
      expect(second.output.join('\n')).not.toContain('npm ci');
      console.log(`[${name}] node-dep build: cold ${first.result.durationMs} ms, cached ${second.result.durationMs} ms`);
      const web = await start(second.result.slugPath, 'web');
      expect((await getText(web.url)).body).toMatch(/^Hello from node-dep on port \d+\n$/);
    });

    it('gives config vars to bin/compile through ENV_DIR and keeps them out of the slug', async () => {
      const { result, output } = await build('node-dep', { env: { API_TOKEN: SECRET }, appName: app('envcheck') });
      expect(output).toContain('       build step: config var API_TOKEN is visible');
      const slug = await slugContents(shelf.client, result.slugPath);
      expect(slug.text).toContain('"sawSecret":true');
      expect(slug.text).not.toContain(SECRET);
      expect(slug.names.some((n) => n.includes('API_TOKEN'))).toBe(false);
      expect((await slugContents(shelf.client, `/cache/${app('envcheck')}.tgz`)).text).not.toContain(SECRET);
    });

    it('builds static-site and serves its pages', async () => {
      const { result } = await build('static-site');
      expect(result.buildpacks).toEqual(['static']);
      expect(result.processTypes).toEqual({ web: 'node .flynn/static-server.mjs' });
      const web = await start(result.slugPath, 'web');
      const res = await getText(web.url);
      expect(res.status).toBe(200);
      expect(res.body).toContain('<title>flynn-ts static site</title>');
    });

    it('builds procfile-two with both process types from its Procfile, and runs them', async () => {
      const { result, output } = await build('procfile-two');
      expect(result.buildpacks).toEqual(['procfile']);
      expect(Object.keys(result.processTypes).sort()).toEqual(['web', 'worker']);
      expect(output).toContain('       Procfile declares types -> web, worker');
      const worker = await start(result.slugPath, 'worker');
      await expect.poll(() => worker.logs(), { timeout: 10_000 }).toContain('worker: tick');
      if (opts.runsProcfileWeb) {
        const web = await start(result.slugPath, 'web');
        expect((await getText(web.url)).status).toBe(200);
      }
    });

    it('fails build-fails naming the failing step, and stores nothing', async () => {
      const err = await build('build-fails').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(BuildFailedError);
      const failed = err as BuildFailedError;
      expect(failed.code).toBe('FLYNN_ERR_SLUG_BUILD_FAILED');
      expect(failed.step).toBe('compile nodejs');
      expect(failed.message).toContain('build failed at step "compile nodejs"');
      expect(failed.output.join('\n')).toContain('error: src/main.css: no such file');
      expect(failed.output.join('\n')).toContain('Build failed');
      expect(await shelf.client.list(`/slugs/${app('build-fails')}`)).toEqual([]);
      expect(await shelf.client.head(`/cache/${app('build-fails')}.tgz`)).toBeUndefined();
    });

    it('fails at detect when no buildpack recognises the app', async () => {
      await expect(build('node-hello', { buildpacks: ['static'], appName: app('nodetect') })).rejects.toMatchObject({ step: 'detect', code: 'FLYNN_ERR_SLUG_BUILD_FAILED' });
      expect(await shelf.client.list(`/slugs/${app('nodetect')}`)).toEqual([]);
    });

    it('removes what .slugignore lists before the build', async () => {
      const { result, output } = await build('node-hello', {
        appName: app('slugignore'),
        files: { '.slugignore': '# test files\n*.log\ndocs/\n/spec/fixture.txt\n', 'debug.log': 'x', 'lib/deep.log': 'y', 'docs/guide.md': 'z', 'spec/fixture.txt': 'w', 'spec/keep.txt': 'k' },
      });
      expect(output.join('\n')).toContain('listed in .slugignore');
      const { names } = await slugContents(shelf.client, result.slugPath);
      expect(names).toContain('server.js');
      expect(names).toContain('spec/keep.txt');
      for (const gone of ['debug.log', 'lib/deep.log', 'docs/guide.md', 'spec/fixture.txt']) expect(names).not.toContain(gone);
    });

    it('uses the bundled buildpack BUILDPACK_URL names, without detection', async () => {
      const { result, output } = await build('procfile-two', { env: { BUILDPACK_URL: 'procfile' }, appName: app('bpurl') });
      expect(result.buildpacks).toEqual(['procfile']);
      expect(output.some((l) => l.startsWith('-----> Using the buildpack BUILDPACK_URL names'))).toBe(true);
    });

    it('runs every buildpack .buildpacks lists, in order', async () => {
      const { result } = await build('node-hello', { appName: app('multi'), files: { '.buildpacks': 'nodejs\nstatic\n', 'index.html': '<p>hi</p>' } });
      expect(result.buildpacks).toEqual(['nodejs', 'static']);
      // The last buildpack's release gives the defaults.
      expect(result.processTypes).toEqual({ web: 'node .flynn/static-server.mjs' });
    });
  });
}
