/** What package.json exports is what tsup builds: every entry has its source, and the testing entries are built. */
import { existsSync, readFileSync } from 'node:fs';
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

  it('offers the conformance suites the docs invite users to run, and the error contract alone', async () => {
    expect(Object.keys(pkg.exports)).toEqual(expect.arrayContaining(['./host/testing', './shelf/testing', './controller/testing', './discovery/testing', './errors']));
    const errors = await import('../../src/errors/index.js');
    expect(Object.keys(errors).sort()).toEqual(['ClosedError', 'ConflictError', 'FlynnError', 'InvalidInputError', 'NotFoundError', 'STATUS_BY_KIND', 'TimeoutError', 'UnauthorizedError', 'UnavailableError', 'errorFromWire']);
  });
});
