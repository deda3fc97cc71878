/**
 * The Python buildpack on the stack image. Real `git push` over SSH into a Docker cluster: a WSGI
 * app whose requirements.txt package comes from a local PEP 503 index this test serves (a wheel
 * built from test/fixtures/python/flynn-greet with the stack's pip, offline), and a standard
 * library app; both answer through the router. Then bin/compile and bin/release run alone in
 * stack containers for the failures and defaults.
 *
 * Django and gunicorn come from Debian: the test `apt-get download`s python3-django, python3-gunicorn
 * and their dependencies from the machine's apt sources (as the stack image is made) and turns them
 * into wheels (test/fixtures/python/deb2wheel.py) for the same index.
 *
 * PyPI is not reachable here and everything listens on 127.0.0.0/8, so the index is on 127.0.0.1
 * and the cluster's builds use the host network (`buildNetwork: 'host'`): a build on the bridge
 * network cannot reach the host's loopback.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestCluster } from '../../src/bootstrap/index.js';
import { ensureStackImage } from '../../src/host/stack-image.js';
import { getVia, until } from '../bootstrap/deploy-scenario.js';
import { pusher } from '../bootstrap/pusher.js';
import { needDocker } from '../support/services.js';
import { REPO } from './helpers.js';

const exec = promisify(execFile);
const DJANGO_DEBS = ['python3-django', 'python3-asgiref', 'python3-sqlparse', 'python3-tz', 'python3-gunicorn', 'python3-pkg-resources'];

/** Debian's Django, gunicorn and their dependencies as wheels in `wheels` (from `work/debs`); false, with a warning (an error in CI), when apt cannot download them. */
async function djangoWheels(work: string, wheels: string): Promise<boolean> {
  const debs = path.join(work, 'debs');
  await mkdir(debs, { recursive: true });
  try {
    await exec('apt-get', ['download', ...DJANGO_DEBS], { cwd: debs, timeout: 120_000 });
  } catch (err) {
    const why = `apt-get download ${DJANGO_DEBS.join(' ')} failed (${(err as Error).message.split('\n')[0]})`;
    if (process.env.CI === 'true') throw new Error(`the Django case needs Debian's packages: ${why}`);
    console.warn(`[skipped] the Django case: ${why}`);
    return false;
  }
  const files = (await readdir(debs)).filter((f) => f.endsWith('.deb')).map((f) => `/w/debs/${f}`);
  const made = await inStack(work, `python3 /fixtures/deb2wheel.py /w/${path.relative(work, wheels)} ${files.join(' ')}`);
  if (made.code !== 0) throw new Error(`deb2wheel failed: ${made.output}`);
  return true;
}
/** The stack image of this checkout's recipe (with python3-venv and pip), whatever `flynn-ts/stack:latest` is now. */
let STACK = 'flynn-ts/stack:latest';
const PACKS = path.join(REPO, 'buildpacks');

/** Run `script` with sh in a throwaway stack container, `dir` mounted at /w and the buildpacks at /flynn/buildpacks. */
async function inStack(dir: string, script: string): Promise<{ code: number; output: string }> {
  const args = ['run', '--rm', '--label', 'io.flynn-ts.test=1', '--network', 'host', '-v', `${dir}:/w`, '-v', `${PACKS}:/flynn/buildpacks:ro`, '-v', `${path.join(REPO, 'test/fixtures/python')}:/fixtures:ro`, STACK, 'sh', '-c', `exec 2>&1; ${script}`];
  try {
    return { code: 0, output: (await exec('docker', args, { timeout: 60_000 })).stdout };
  } catch (err) {
    const e = err as { code: number; stdout: string };
    return { code: e.code, output: e.stdout };
  }
}

/** A PEP 503 "simple" index of the wheels in `dir`, on 127.0.0.1; it records the paths asked for. */
async function startIndex(dir: string): Promise<{ url: string; requests: string[]; server: Server }> {
  const wheels = (await readdir(dir)).filter((f) => f.endsWith('.whl'));
  const project = (f: string) => f.split('-')[0]!.toLowerCase().replace(/[-_.]+/g, '-');
  const requests: string[] = [];
  const server = createServer((req, res) => {
    const url = req.url ?? '/';
    requests.push(url);
    const m = /^\/simple\/([^/]+)\/?$/.exec(url);
    if (m) {
      const files = wheels.filter((f) => project(f) === m[1]);
      if (files.length === 0) return void res.writeHead(404).end('not found\n');
      void Promise.all(files.map(async (f) => `<a href="/files/${f}#sha256=${createHash('sha256').update(await readFile(path.join(dir, f))).digest('hex')}">${f}</a>`)).then((links) => {
        res.writeHead(200, { 'content-type': 'text/html' }).end(`<!DOCTYPE html><html><body>\n${links.join('<br>\n')}\n</body></html>\n`);
      });
      return;
    }
    const file = /^\/files\/([^/]+\.whl)$/.exec(url)?.[1];
    if (file && wheels.includes(file)) return void readFile(path.join(dir, file)).then((b) => res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(b));
    res.writeHead(404).end('not found\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/simple/`, requests, server };
}

if (await needDocker('python buildpack')) {
  describe('python buildpack on the stack', () => {
    let work: string;
    let index: Awaited<ReturnType<typeof startIndex>>;
    let django = false;
    beforeAll(async () => {
      STACK = (await ensureStackImage()).name;
      work = await mkdtemp(path.join(tmpdir(), 'flynn-python-'));
      await cp(path.join(REPO, 'test/fixtures/python/flynn-greet'), path.join(work, 'src'), { recursive: true });
      const built = await inStack(work, 'cd /tmp && cp -r /w/src pkg && python3 -m pip wheel -q --no-deps --no-build-isolation --no-index ./pkg -w /w/wheels');
      expect(built.code, built.output).toBe(0);
      django = await djangoWheels(work, path.join(work, 'wheels'));
      index = await startIndex(path.join(work, 'wheels'));
    }, 180_000);
    afterAll(async () => {
      index?.server.close();
      await rm(work, { recursive: true, force: true });
    });

    describe('git push to a Docker cluster (builds on the host network)', () => {
      const { ctx, push } = pusher(() => createTestCluster({ runtime: 'docker', buildNetwork: 'host', image: STACK }));
      const answer = (app: string) =>
        until(`${app} to answer through the router`, async () => {
          const r = await getVia(ctx.cluster.routerUrl, `${app}.${ctx.cluster.domain}`);
          return r.status === 200 ? r : undefined;
        });
      /** Set a config var of `app` (created first when `create`) and wait for the deploy it starts. */
      const setEnv = async (app: string, env: Record<string, string>, create = false) => {
        if (create) await ctx.cluster.client.createApp({ name: app });
        const set = await ctx.cluster.client.setEnv(app, env);
        if (set.deployment) await ctx.cluster.client.waitForDeployment(app, set.deployment.id);
      };

      it('installs requirements.txt from the app\'s PIP_INDEX_URL into a virtualenv, then a second push restores it from the cache', async () => {
        await setEnv('py-wsgi', { PIP_INDEX_URL: index.url }, true);
        const cold = await push('python-wsgi', 'py-wsgi', { existing: true });
        expect(cold.code, cold.output).toBe(0);
        expect(cold.remote).toContain('-----> Python app detected');
        expect(cold.remote).toContain("       runtime.txt asks for 3.11: the stack's 3.11.2 fits");
        expect(cold.remote).toContain('-----> Installing dependencies from requirements.txt');
        expect(cold.remote).toContain('       Successfully installed flynn-greet-1.0.0');
        expect(index.requests).toContain('/simple/flynn-greet/');
        // The console script's shebang was rewritten: it runs from /app, not the build's /tmp/build.
        expect((await answer('py-wsgi')).body).toBe('Hello from python-wsgi (python 3.11, venv True)\n');

        const asked = index.requests.length;
        const cached = await push('python-wsgi', 'py-wsgi', { existing: true });
        expect(cached.code, cached.output).toBe(0);
        expect(cached.remote).toContain('-----> Restoring the virtualenv from cache (unchanged requirements.txt)');
        expect(index.requests.length).toBe(asked); // pip did not run
        expect((await answer('py-wsgi')).body).toBe('Hello from python-wsgi (python 3.11, venv True)\n');
        console.log(`python-wsgi push (build + deploy): cold ${cold.ms} ms, cached ${cached.ms} ms`);
      }, 150_000);

      it("deploys a Django app (Debian's Django 3.2 as wheels) with gunicorn as web, collecting its static files unless DISABLE_COLLECTSTATIC", async ({ skip }) => {
        if (!django) return skip("Debian's Django packages could not be downloaded");
        await setEnv('py-django', { PIP_INDEX_URL: index.url }, true);
        const pushed = await push('python-django', 'py-django', { existing: true });
        expect(pushed.code, pushed.output).toBe(0);
        expect(pushed.remote).toContain('-----> Running python manage.py collectstatic --noinput');
        expect(pushed.remote.some((l) => /^ {7}1 static file copied to '\/.*\/staticfiles'\.$/.test(l)), pushed.output).toBe(true);
        expect((await ctx.cluster.client.currentRelease('py-django')).processes.web?.cmd.join(' ')).toContain('gunicorn mysite.wsgi --bind 0.0.0.0:$PORT');
        expect((await answer('py-django')).body).toBe('Hello from python-django (django 3.2.25, collected site.css)\n');

        await setEnv('py-django', { DISABLE_COLLECTSTATIC: '1' });
        const again = await push('python-django', 'py-django', { existing: true });
        expect(again.code, again.output).toBe(0);
        expect(again.remote).toContain('-----> Skipping collectstatic (DISABLE_COLLECTSTATIC is set)');
        expect((await answer('py-django')).body).toBe('Hello from python-django (django 3.2.25, collected )\n');
      }, 240_000);

      it('runs a standard-library app with its Procfile (python on PATH from the virtualenv)', async () => {
        const pushed = await push('python-stdlib', 'py-stdlib');
        expect(pushed.code, pushed.output).toBe(0);
        expect(pushed.remote).toContain('       requirements.txt lists no packages: nothing to install');
        expect((await answer('py-stdlib')).body).toBe('Hello from python-stdlib\n');
      }, 120_000);
    });

    describe('bin/compile and bin/release alone', () => {
      let n = 0;
      /** A fresh app dir under work holding `files`; returns its path inside the container. */
      const app = async (files: Record<string, string>) => {
        const dir = `app-${++n}`;
        for (const [name, text] of Object.entries(files)) {
          await mkdir(path.dirname(path.join(work, dir, name)), { recursive: true });
          await writeFile(path.join(work, dir, name), text);
        }
        await mkdir(path.join(work, `env-${n}`), { recursive: true });
        await writeFile(path.join(work, `env-${n}`, 'PIP_INDEX_URL'), index.url);
        return { build: `/w/${dir}`, compile: `/flynn/buildpacks/python/bin/compile /w/${dir} /w/cache-${n} /w/env-${n}` };
      };

      /** Run `compile`: pip fails saying `said`, and the build's last line names pip's exit status. */
      const expectPipFailed = async (compile: string, said: string) => {
        const r = await inStack(work, compile);
        expect(r.code).not.toBe(0);
        expect(r.output).toContain(said);
        expect(r.output.trimEnd().split('\n').at(-1)).toBe(' !     Build failed: pip install exited with status 1 (see its output above)');
      };

      it('fails with one line when runtime.txt asks for another major Python, and warns for another minor', async () => {
        const old = await app({ 'runtime.txt': 'python-2.7.18\n', 'requirements.txt': '' });
        const r = await inStack(work, old.compile);
        expect(r.code).not.toBe(0);
        expect(r.output).toContain(` !     Build failed: runtime.txt asks for Python "2.7.18", which the stack's Python 3.11.2 cannot stand in for (flynn-ts does not download Pythons)`);
        const newer = await app({ '.python-version': '3.12\n', 'requirements.txt': '' });
        const w = await inStack(work, newer.compile);
        expect(w.code, w.output).toBe(0);
        expect(w.output).toContain(" !     Warning: .python-version asks for Python 3.12; building and running with the stack's 3.11.2 anyway (flynn-ts does not download Pythons)");
      }, 30_000);

      it('fails with pip\'s exit status when a requirement is not in the index', async () => {
        const a = await app({ 'requirements.txt': 'no-such-package-xyz==1.0\n' });
        await expectPipFailed(a.compile, 'ERROR: No matching distribution found for no-such-package-xyz==1.0');
      }, 30_000);

      it('installs Pipfile.lock with pip, and refuses a Pipfile without a lock', async () => {
        const lock = { _meta: {}, default: { 'flynn-greet': { version: '==1.0.0' } }, develop: {} };
        const a = await app({ Pipfile: '[packages]\nflynn-greet = "*"\n', 'Pipfile.lock': JSON.stringify(lock) });
        const r = await inStack(work, `${a.compile} && ${a.build}/.venv/bin/python -c 'import greet; print(greet.greet("pipfile"))'`);
        expect(r.code, r.output).toBe(0);
        expect(r.output).toContain('-----> Installing dependencies from Pipfile.lock');
        expect(r.output).toContain('Hello from pipfile');
        const b = await app({ Pipfile: '[packages]\n' });
        const f = await inStack(work, b.compile);
        expect(f.output).toContain(' !     Build failed: the app has a Pipfile but no Pipfile.lock: run pipenv lock and commit Pipfile.lock');
      }, 30_000);

      /** The sha256 of the flynn-greet wheel the index serves, as locks record it. */
      const wheelHash = async () => {
        const wheel = (await readdir(path.join(work, 'wheels'))).find((f) => f.startsWith('flynn_greet-'))!;
        return { file: wheel, hash: `sha256:${createHash('sha256').update(await readFile(path.join(work, 'wheels', wheel))).digest('hex')}` };
      };
      // Locked but never installed: a dev dependency, and a Windows-only one (neither is in the index, so pip would fail on them).
      const poetryLock = (hash: string) => `[[package]]
name = "flynn-greet"
version = "1.0.0"
description = ""
optional = false
python-versions = "*"
files = [{file = "flynn_greet-1.0.0-py3-none-any.whl", hash = "${hash}"}]

[package.dependencies]
winonly = {version = "*", markers = "sys_platform == 'win32'"}

[[package]]
name = "winonly"
version = "1.0"
optional = false
python-versions = "*"
files = [{file = "winonly-1.0-py3-none-any.whl", hash = "sha256:${'1'.repeat(64)}"}]

[[package]]
name = "pytest"
version = "8.0.0"
optional = false
python-versions = "*"
files = [{file = "pytest-8.0.0-py3-none-any.whl", hash = "sha256:${'2'.repeat(64)}"}]

[metadata]
lock-version = "2.0"
python-versions = "^3.11"
content-hash = "0"
`;
      const poetryProject = '[tool.poetry]\nname = "app"\nversion = "0.1.0"\npackage-mode = false\n\n[tool.poetry.dependencies]\npython = "^3.11"\nflynn-greet = "1.0.0"\n\n[tool.poetry.group.dev.dependencies]\npytest = "*"\n';
      const uvLock = (hash: string) => `version = 1
requires-python = ">=3.11"

[[package]]
name = "app"
version = "0.1.0"
source = { virtual = "." }
dependencies = [{ name = "flynn-greet" }]

[package.dev-dependencies]
dev = [{ name = "pytest" }]

[[package]]
name = "flynn-greet"
version = "1.0.0"
source = { registry = "https://pypi.org/simple" }
dependencies = [{ name = "winonly", marker = "sys_platform == 'win32'" }]
wheels = [{ url = "https://files.example/flynn_greet-1.0.0-py3-none-any.whl", hash = "${hash}", size = 1 }]

[[package]]
name = "winonly"
version = "1.0"
source = { registry = "https://pypi.org/simple" }
wheels = [{ url = "https://files.example/winonly-1.0-py3-none-any.whl", hash = "sha256:${'1'.repeat(64)}", size = 1 }]

[[package]]
name = "pytest"
version = "8.0.0"
source = { registry = "https://pypi.org/simple" }
wheels = [{ url = "https://files.example/pytest-8.0.0-py3-none-any.whl", hash = "sha256:${'2'.repeat(64)}", size = 1 }]
`;
      const uvProject = '[project]\nname = "app"\nversion = "0.1.0"\ndependencies = ["flynn-greet==1.0.0"]\n\n[dependency-groups]\ndev = ["pytest"]\n';
      const greets = (build: string, who: string) => `${build}/.venv/bin/python -c 'import greet; print(greet.greet("${who}"))'`;

      it('installs what poetry.lock pins for the main group with pip (no poetry on the stack), hashes checked, no dev or other-platform packages', async () => {
        const { hash } = await wheelHash();
        const a = await app({ 'pyproject.toml': poetryProject, 'poetry.lock': poetryLock(hash) });
        const r = await inStack(work, `${a.compile} && ${greets(a.build, 'poetry')} && python3 -m pip --python ${a.build}/.venv/bin/python list --format=freeze`);
        expect(r.code, r.output).toBe(0);
        expect(r.output).toContain('-----> Installing dependencies from poetry.lock');
        expect(r.output).toContain('       2 packages locked in poetry.lock, installed with pip (no poetry on the stack)');
        expect(r.output).toContain('       Successfully installed flynn-greet-1.0.0');
        expect(r.output).toContain('Hello from poetry');
        expect(r.output).toContain('flynn-greet==1.0.0');
        expect(r.output).not.toMatch(/pytest|winonly==/);
      }, 60_000);

      it('installs what uv.lock pins for the project with pip (no uv on the stack), and refuses a wheel whose hash is not the locked one', async () => {
        const { hash } = await wheelHash();
        const a = await app({ 'pyproject.toml': uvProject, 'uv.lock': uvLock(hash) });
        const r = await inStack(work, `${a.compile} && ${greets(a.build, 'uv')}`);
        expect(r.code, r.output).toBe(0);
        expect(r.output).toContain('-----> Installing dependencies from uv.lock');
        expect(r.output).toContain('       2 packages locked in uv.lock, installed with pip (no uv on the stack)');
        expect(r.output).toContain('Hello from uv');
        const bad = await app({ 'pyproject.toml': uvProject, 'uv.lock': uvLock(`sha256:${'3'.repeat(64)}`) });
        await expectPipFailed(bad.compile, 'THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE');
      }, 60_000);

      it('exports a lock as pip requirements: extras followed, markers of the edges kept, git/path/editable sources, hashes dropped (with a warning) when one package has none', async () => {
        const lock = `version = 1
[[package]]
name = "app"
version = "0.1.0"
source = { editable = "." }
dependencies = [{ name = "web-kit", extra = ["fast"] }, { name = "lib", marker = "python_version >= '3.10'" }]

[[package]]
name = "web-kit"
version = "2.1.0"
source = { registry = "https://pypi.org/simple" }
dependencies = [{ name = "lib", marker = "sys_platform == 'linux'" }]
wheels = [{ url = "https://files.example/web_kit-2.1.0-py3-none-any.whl", hash = "sha256:${'a'.repeat(64)}" }]

[package.optional-dependencies]
fast = [{ name = "speedy" }]
slow = [{ name = "never" }]

[[package]]
name = "speedy"
version = "1.2.0"
source = { git = "https://git.example/speedy?rev=main#0123abc" }

[[package]]
name = "lib"
version = "0.3.0"
source = { editable = "libs/lib" }

[[package]]
name = "never"
version = "9"
source = { path = "wheels/never-9-py3-none-any.whl" }
`;
        const a = await app({ 'pyproject.toml': '[project]\nname = "app"\nversion = "0.1.0"\n', 'uv.lock': lock });
        const r = await inStack(work, `python3 /flynn/buildpacks/python/lib/python.py lock-requirements ${a.build} uv /tmp/reqs && echo --- && cat /tmp/reqs`);
        expect(r.code, r.output).toBe(0);
        expect(r.output).toBe(
          [
            'uv.lock records no hash for lib, speedy: pip installs the lock without checking hashes',
            '---',
            "-e ./libs/lib ; (python_version >= '3.10') or (sys_platform == 'linux')",
            'speedy @ git+https://git.example/speedy@0123abc',
            'web-kit==2.1.0',
            '',
          ].join('\n'),
        );
      }, 30_000);

      it('fails in one line for a Poetry project without poetry.lock and for a lock that does not lock what pyproject.toml lists', async () => {
        const unlocked = await app({ 'pyproject.toml': poetryProject });
        const u = await inStack(work, unlocked.compile);
        expect(u.code).not.toBe(0);
        expect(u.output.trimEnd().split('\n').at(-1)).toBe(' !     Build failed: pyproject.toml is a Poetry project but there is no poetry.lock: run poetry lock and commit poetry.lock (poetry is not on the stack; the lock is installed with pip)');
        const { hash } = await wheelHash();
        const stale = await app({ 'pyproject.toml': uvProject.replace('"flynn-greet==1.0.0"', '"flynn-greet==1.0.0", "requests>=2"'), 'uv.lock': uvLock(hash) });
        const s = await inStack(work, stale.compile);
        expect(s.code).not.toBe(0);
        expect(s.output.trimEnd().split('\n').at(-1)).toBe(' !     Build failed: uv.lock is out of date: pyproject.toml lists requests, which it does not lock: run `uv lock` and commit uv.lock');
        const stalePoetry = await app({ 'pyproject.toml': poetryProject.replace('flynn-greet = "1.0.0"\n', 'flynn-greet = "1.0.0"\nrequests = "^2"\n'), 'poetry.lock': poetryLock(hash) });
        const p = await inStack(work, stalePoetry.compile);
        expect(p.output.trimEnd().split('\n').at(-1)).toBe(' !     Build failed: pyproject.toml lists requests, which poetry.lock does not lock: run `poetry lock` and commit poetry.lock');
      }, 60_000);

      it('gives gunicorn as the default web for an app that installed it (Django: its project\'s wsgi module)', async () => {
        const release = async (files: Record<string, string>) => {
          const a = await app({ ...files, '.venv/bin/gunicorn': '' });
          return (await inStack(work, `/flynn/buildpacks/python/bin/release ${a.build}`)).output;
        };
        expect(await release({ 'app.py': '' })).toBe('default_process_types:\n  web: "gunicorn app:app --bind 0.0.0.0:$PORT"\n');
        expect(await release({ 'wsgi.py': '' })).toBe('default_process_types:\n  web: "gunicorn wsgi --bind 0.0.0.0:$PORT"\n');
        const manage = "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'mysite.settings')\n";
        expect(await release({ 'manage.py': manage })).toBe('default_process_types:\n  web: "gunicorn mysite.wsgi --bind 0.0.0.0:$PORT"\n');
        const bare = await app({ 'app.py': '' });
        expect((await inStack(work, `/flynn/buildpacks/python/bin/release ${bare.build}`)).output).toBe('default_process_types: {}\n');
      }, 30_000);

      it('is detected by requirements.txt, pyproject.toml, setup.py, Pipfile, uv.lock, poetry.lock, runtime.txt or .python-version, and comes after nodejs in ORDER', async () => {
        for (const f of ['requirements.txt', 'pyproject.toml', 'setup.py', 'Pipfile', 'uv.lock', 'poetry.lock', 'runtime.txt', '.python-version']) {
          await mkdir(path.join(work, `detect-${f}`), { recursive: true });
          await writeFile(path.join(work, `detect-${f}`, f), '');
        }
        const r = await inStack(work, 'for d in /w/detect-*; do /flynn/buildpacks/python/bin/detect $d || echo no; done; mkdir /tmp/e && /flynn/buildpacks/python/bin/detect /tmp/e || echo none');
        expect(r.output).toBe(`${'Python\n'.repeat(8)}none\n`);
        const order = (await readFile(path.join(PACKS, 'ORDER'), 'utf8')).split('\n').filter((l) => l && !l.startsWith('#'));
        expect(order.slice(0, 3)).toEqual(['nodejs', 'python', 'go']);
      }, 30_000);
    });
  });
}
