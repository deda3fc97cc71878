// Bad input to the builder and its parsers, and the build options that change where buildpacks
// come from (a local directory, a git URL pinned with #ref) or how long a build may take.
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pack } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { MemoryBlobStore } from '../../src/shelf/memory-blob-store.js';
import { startShelf, type Shelf } from '../../src/shelf/server.js';
import { ShelfClient } from '../../src/shelf/client.js';
import { buildSlug } from '../../src/slug/builder.js';
import { bundledBuildpacksDir, parseBuildpackRef } from '../../src/slug/buildpack-source.js';
import { LineSplitter } from '../../src/slug/executor.js';
import { createBuildExecutor } from '../../src/slug/create.js';
import { ProcessBuildExecutor } from '../../src/slug/process-executor.js';
import { parseProcfile, parseRelease } from '../../src/slug/procfile.js';
import { alive } from '../support/processes.js';
import { sourceTar } from './helpers.js';

function tarOf(entries: { name: string; type?: 'file' | 'symlink' | 'directory'; content?: string; linkname?: string }[]): Readable {
  const p = pack();
  for (const e of entries) {
    if (e.type === 'symlink') p.entry({ name: e.name, type: 'symlink', linkname: e.linkname! });
    else if (e.type === 'directory') p.entry({ name: e.name, type: 'directory' });
    else p.entry({ name: e.name }, e.content ?? '');
  }
  p.finalize();
  return p as unknown as Readable;
}

describe('slug builder input checks', () => {
  let shelf: Shelf;
  let client: ShelfClient;
  let work: string;
  const executor = new ProcessBuildExecutor();
  beforeAll(async () => {
    shelf = await startShelf({ store: new MemoryBlobStore(), host: '127.0.0.7' });
    client = new ShelfClient({ url: shelf.url });
    work = await mkdtemp(path.join(tmpdir(), 'flynn-slug-inputs-'));
  });
  afterAll(async () => {
    await client?.close();
    await shelf?.close();
    await rm(work, { recursive: true, force: true });
  });

  it.each(['', 'Upper', '-dash', 'a/b', 'x'.repeat(64), '../up'])('refuses the app name %j', async (app) => {
    await expect(buildSlug({ source: tarOf([]), app, executor, shelf: client })).rejects.toMatchObject({ code: 'FLYNN_ERR_SLUG_INVALID_INPUT', kind: 'invalid' });
  });

  it.each(['1ABC', 'A-B', '../x', 'A B', ''])('refuses the config var name %j', async (name) => {
    await expect(buildSlug({ source: tarOf([]), app: 'ok', env: { [name]: 'v' }, executor, shelf: client })).rejects.toMatchObject({ code: 'FLYNN_ERR_SLUG_INVALID_INPUT' });
  });

  it.each([
    ['a .. entry', [{ name: '../escape.txt', content: 'x' }]],
    ['an absolute entry', [{ name: '/etc/evil', content: 'x' }]],
    ['a file written through a symlink leading out', [{ name: 'out', type: 'symlink' as const, linkname: '/tmp' }, { name: 'out/evil-flynn-test', content: 'x' }]],
  ])('refuses a source tar with %s at the unpack step, storing nothing', async (_what, entries) => {
    const err = await buildSlug({ source: tarOf(entries), app: 'evil', executor, shelf: client, workDir: work }).catch((e: unknown) => e);
    expect(err).toMatchObject({ step: 'unpack source', code: 'FLYNN_ERR_SLUG_INVALID_INPUT' });
    expect(await client.list('/')).toEqual([]);
    expect(await readdir('/tmp')).not.toContain('evil-flynn-test');
    expect(await readdir(work)).toEqual([]);
  });

  it('refuses a garbage source stream at the unpack step', async () => {
    await expect(buildSlug({ source: Readable.from([Buffer.alloc(700, 7)]), app: 'garbage', executor, shelf: client })).rejects.toMatchObject({ step: 'unpack source' });
  });

  it('refuses an unknown BUILDPACK_URL at the resolve step', async () => {
    await expect(buildSlug({ source: await sourceTar('node-hello'), app: 'bp', env: { BUILDPACK_URL: 'nope' }, executor, shelf: client })).rejects.toMatchObject({ step: 'resolve buildpacks', code: 'FLYNN_ERR_SLUG_INVALID_INPUT' });
  });

  it('builds with a local buildpack directory and one cloned from git at a pinned #ref', async () => {
    const pack1 = path.join(work, 'hello-pack');
    await mkdir(path.join(pack1, 'bin'), { recursive: true });
    const script = (version: string) => ({
      detect: '#!/bin/sh\necho Hello\n',
      compile: `#!/bin/sh\necho "-----> hello-pack ${version} compiling"\necho "${version}" > "$1/pack-version"\n`,
      release: `#!/bin/sh\nprintf 'default_process_types:\\n  web: "cat pack-version"\\n'\n`,
    });
    const write = async (dir: string, version: string) => {
      for (const [f, body] of Object.entries(script(version))) {
        await writeFile(path.join(dir, 'bin', f), body);
        await chmod(path.join(dir, 'bin', f), 0o755);
      }
    };
    await write(pack1, 'v1');
    const git = (...args: string[]) => execFileSync('git', ['-C', pack1, ...args], { stdio: 'ignore', env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' } });
    git('init', '-q');
    git('add', '.');
    git('commit', '-qm', 'v1');
    git('tag', 'v1');
    await write(pack1, 'v2');
    git('commit', '-qam', 'v2');

    const local = await buildSlug({ source: await sourceTar('node-hello'), app: 'localpack', env: { BUILDPACK_URL: pack1 }, executor, shelf: client });
    expect(local.processTypes).toEqual({ web: 'cat pack-version' });
    const lines: string[] = [];
    const pinned = await buildSlug({ source: await sourceTar('node-hello'), app: 'gitpack', env: { BUILDPACK_URL: `file://${pack1}#v1` }, executor, shelf: client, onOutput: (l) => lines.push(l) });
    expect(lines).toContain('-----> hello-pack v1 compiling');
    expect(pinned.buildpacks).toEqual(['hello-pack']);
    await expect(buildSlug({ source: await sourceTar('node-hello'), app: 'gitpack', env: { BUILDPACK_URL: `file://${pack1}#no-such-tag` }, executor, shelf: client })).rejects.toMatchObject({ step: 'resolve buildpacks' });
  });

  it('kills a build that runs past timeoutMs and says which step timed out', async () => {
    const slow = path.join(work, 'slow-pack');
    await mkdir(path.join(slow, 'bin'), { recursive: true });
    const pidFile = path.join(work, 'slow-pack.pid');
    for (const [f, body] of Object.entries({ detect: '#!/bin/sh\necho Slow\n', compile: `#!/bin/sh\necho $$ > ${pidFile}\necho compiling slowly\nexec sleep 30\n`, release: '#!/bin/sh\n' })) {
      await writeFile(path.join(slow, 'bin', f), body);
      await chmod(path.join(slow, 'bin', f), 0o755);
    }
    // The timeout must fall in the compile: the steps before it took 42-242 ms here at load 4.5, so 3 s leaves a loaded machine room.
    const err = await buildSlug({ source: await sourceTar('node-hello'), app: 'slow', env: { BUILDPACK_URL: slow }, executor, shelf: client, timeoutMs: 3000 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'FLYNN_ERR_SLUG_BUILD_TIMEOUT', step: 'compile slow-pack', kind: 'timeout' });
    // Killed, not left running its 30 s.
    const pid = Number(await readFile(pidFile, 'utf8'));
    await vi.waitFor(() => expect(alive(pid)).toBe(false), { timeout: 10_000 });
    expect(await client.list('/slugs/slow')).toEqual([]);
  });

  it('stops a build when its signal is aborted', async () => {
    const controller = new AbortController();
    // Aborted while the compile runs.
    const onOutput = (line: string) => line.includes('compiling slowly') && controller.abort();
    const build = buildSlug({ source: await sourceTar('node-hello'), app: 'aborted', env: { BUILDPACK_URL: path.join(work, 'slow-pack') }, executor, shelf: client, signal: controller.signal, onOutput });
    await expect(build).rejects.toMatchObject({ code: 'FLYNN_ERR_SLUG_BUILD_ABORTED' });
  });
});

describe('Procfile and release parsing', () => {
  it('reads process types, skipping comments and blank lines', () => {
    expect(parseProcfile('# c\nweb: node server.js --port $PORT\n\nworker:   sh -c "x: y"\r\n')).toEqual({ web: 'node server.js --port $PORT', worker: 'sh -c "x: y"' });
  });
  it.each(['just a command', 'bad type!: x', 'web:'])('refuses the Procfile line %j', (line) => {
    expect(() => parseProcfile(line)).toThrow(/Procfile line 1/);
  });
  it('reads default_process_types from release YAML, plain or quoted', () => {
    expect(parseRelease('---\naddons: []\ndefault_process_types:\n  web: "node a.js"\n  worker: node b.js\n')).toEqual({ web: 'node a.js', worker: 'node b.js' });
    expect(parseRelease('default_process_types: {}\n')).toEqual({});
    expect(parseRelease('')).toEqual({});
    expect(() => parseRelease('default_process_types: [a]')).toThrow(/not a map/);
    expect(() => parseRelease('default_process_types: {web: [1]}')).toThrow();
  });
});

describe('buildpack references', () => {
  const dir = bundledBuildpacksDir();
  it('reads bundled names, git URLs with #ref and absolute paths', () => {
    expect(parseBuildpackRef('static', dir)).toEqual({ kind: 'bundled', name: 'static' });
    expect(parseBuildpackRef('https://git.example.com/b/go.git#v3', dir)).toEqual({ kind: 'git', url: 'https://git.example.com/b/go.git', ref: 'v3' });
    expect(parseBuildpackRef('git@example.com:b/go.git', dir)).toEqual({ kind: 'git', url: 'git@example.com:b/go.git' });
    expect(parseBuildpackRef(dir, dir)).toEqual({ kind: 'local', path: dir });
  });
  it.each(['nosuch', 'relative/path', '/no/such/dir', 'https://x/y.git#bad ref;rm', ''])('refuses %j', (ref) => {
    expect(() => parseBuildpackRef(ref, dir)).toThrow(expect.objectContaining({ code: 'FLYNN_ERR_SLUG_INVALID_INPUT' }));
  });
});

describe('LineSplitter', () => {
  it('joins partial chunks into lines and flushes the last one', () => {
    const lines: string[] = [];
    const s = new LineSplitter((l) => lines.push(l));
    s.push('-----> a');
    s.push('bc\r\n   x\nlast');
    expect(lines).toEqual(['-----> abc', '   x']);
    s.flush();
    expect(lines).toEqual(['-----> abc', '   x', 'last']);
  });
});

describe('createBuildExecutor', () => {
  it('builds the executor a config names and refuses an unknown one', () => {
    expect(createBuildExecutor({ backend: 'process' }).name).toBe('process');
    expect(createBuildExecutor({ backend: 'docker', image: 'x' }).name).toBe('docker');
    expect(() => createBuildExecutor({ backend: 'k8s' } as never)).toThrow(expect.objectContaining({ code: 'FLYNN_ERR_SLUG_INVALID_INPUT' }));
  });
});
