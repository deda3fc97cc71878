/** What package.json exports is what tsup builds: every entry has its source, and the testing entries are built. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const pkg = JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, { types: string; import: string }> };
const tsup = readFileSync(resolve(ROOT, 'tsup.config.ts'), 'utf8');

describe('package exports', () => {
  it('each export is built from a src/ entry (src/<module>/index.ts, or one tsup lists)', () => {
    for (const [name, target] of Object.entries(pkg.exports)) {
      const source = target.import.replace(/^\.\/dist\//, 'src/').replace(/\.js$/, '.ts');
      expect(existsSync(resolve(ROOT, source)), `${name} → ${source}`).toBe(true);
      expect(target.types, name).toBe(target.import.replace(/\.js$/, '.d.ts'));
      if (!/^src\/[a-z]+\/index\.ts$/.test(source)) expect(tsup, `${source} is a tsup entry`).toContain(`'${source}'`);
    }
  });

  it('exports every module that has a public face (src/<module>/index.ts)', () => {
    const modules = readdirSync(resolve(ROOT, 'src'), { withFileTypes: true }).filter((d) => d.isDirectory() && existsSync(resolve(ROOT, 'src', d.name, 'index.ts')));
    for (const m of modules) expect(Object.keys(pkg.exports), m.name).toContain(`./${m.name}`);
  });

  it('offers the conformance suites the docs invite users to run, and the error contract alone', async () => {
    expect(Object.keys(pkg.exports)).toEqual(expect.arrayContaining(['./host/testing', './shelf/testing', './controller/testing', './discovery/testing', './errors']));
    const errors = await import('../../src/errors/index.js');
    expect(Object.keys(errors).sort()).toEqual(['ClosedError', 'ConflictError', 'FlynnError', 'InvalidInputError', 'NotFoundError', 'STATUS_BY_KIND', 'TimeoutError', 'UnauthorizedError', 'UnavailableError', 'errorFromWire']);
  });
});
