// How a push is built: the look at the top of the pushed tar that picks a Dockerfile build over
// buildpacks, and the build args an app's meta lets through. No Docker needed.
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dockerBuildArgs, probeSource } from '../../src/slug/dockerfile.js';

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

/** A tar of `files` made as `git archive` makes it (entries without ./), or with ./ entries (`tar -C dir .`). */
async function tarOf(files: Record<string, string>, dotSlash = false): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'flynn-probe-'));
  dirs.push(dir);
  const tree = path.join(dir, 'tree');
  for (const [name, text] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(tree, name)), { recursive: true });
    await writeFile(path.join(tree, name), text);
  }
  const file = path.join(dir, 'src.tar');
  execFileSync('tar', ['-c', '-f', file, '-C', tree, ...(dotSlash ? ['.'] : Object.keys(files))]);
  return file;
}

describe('probeSource', () => {
  it('sees a top-level Dockerfile, .buildpacks and the Procfile text, in either tar layout', async () => {
    for (const dotSlash of [false, true]) {
      const file = await tarOf({ Dockerfile: 'FROM x\n', '.buildpacks': 'nodejs\n', Procfile: 'worker: run\n', 'sub/Dockerfile': '' }, dotSlash);
      expect(await probeSource(file)).toEqual({ dockerfile: true, buildpacks: true, procfile: 'worker: run\n' });
    }
  });

  it('ignores a Dockerfile below the top', async () => {
    expect(await probeSource(await tarOf({ 'docker/Dockerfile': 'FROM x\n', 'package.json': '{}' }))).toEqual({ dockerfile: false, buildpacks: false });
  });
});

describe('dockerBuildArgs', () => {
  it('passes only the config vars meta docker_build_args lists, and only those set', () => {
    const env = { A: '1', B: '2', SECRET: 's' };
    expect(dockerBuildArgs({ docker_build_args: 'A, B ,MISSING' }, env)).toEqual({ A: '1', B: '2' });
    expect(dockerBuildArgs({}, env)).toEqual({});
    expect(dockerBuildArgs(undefined, env)).toEqual({});
  });
});
