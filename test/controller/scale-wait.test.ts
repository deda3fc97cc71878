import { describe, expect, it } from 'vitest';
import { ScaleProgress, tellingLine } from '../../src/controller/scale-wait.js';
import type { Job, JobState } from '../../src/controller/types.js';

const job = (id: string, state: JobState, type = 'web', releaseId = 'r2'): Job => ({ id, appId: 'a', releaseId, type, state, createdAt: `2026-12-05T00:00:0${id.length}Z` });
const progress = (before: string[] = []) => new ScaleProgress({ releaseId: 'r2', processes: { web: 2 } }, ['web'], new Set(before), { holdMs: 1000, gatherMs: 500 });

describe('ScaleProgress: what a scale waits for', () => {
  it('says up only once the jobs it started stayed up for holdMs, with the time they all came up', () => {
    const p = progress();
    expect(p.see([job('a', 'up'), job('b', 'starting')], 0)).toMatchObject({ kind: 'waiting' });
    expect(p.see([job('a', 'up'), job('b', 'up')], 300)).toEqual({ kind: 'waiting', counts: [{ type: 'web', want: 2, live: 2, up: 2 }], wakeAt: 1300 });
    expect(p.see([job('a', 'up'), job('b', 'up')], 1300)).toEqual({ kind: 'up', upAt: 300 });
  });

  it('fails on a job it started that crashed within the hold, after gathering the crashes of the type', () => {
    const p = progress();
    p.see([job('a', 'up'), job('b', 'up')], 100);
    expect(p.see([job('a', 'crashed'), job('b', 'up')], 400)).toMatchObject({ kind: 'waiting', wakeAt: 900 });
    expect(p.see([job('a', 'crashed'), job('b', 'up')], 900)).toMatchObject({ kind: 'crashed', type: 'web', jobs: [{ id: 'a' }] });
    // All of the count crashed: no need to wait for more.
    expect(progress().see([job('a', 'crashed'), job('bb', 'failed')], 0)).toMatchObject({ kind: 'crashed', jobs: [{ id: 'a' }, { id: 'bb' }] });
  });

  it('ignores a crash listed from before the scale and jobs of other releases', () => {
    const p = progress(['old']);
    expect(p.see([job('old', 'crashed'), job('x', 'crashed', 'web', 'r1'), job('a', 'up'), job('b', 'up')], 0)).toMatchObject({ kind: 'waiting', wakeAt: 1000 });
    expect(p.see([job('old', 'crashed'), job('a', 'up'), job('b', 'up')], 1000)).toEqual({ kind: 'up', upAt: 0 });
  });

  it('needs no hold when it started no job (a scale down)', () => {
    const p = new ScaleProgress({ releaseId: 'r2', processes: { web: 1 } }, ['web'], new Set(['a', 'b']), { holdMs: 1000, gatherMs: 500 });
    expect(p.see([job('a', 'up'), job('b', 'up')], 0)).toMatchObject({ kind: 'waiting' });
    expect(p.see([job('a', 'up')], 50)).toEqual({ kind: 'up', upAt: 50 });
  });
});

describe('tellingLine', () => {
  it("picks a crash's error line over node's trailer, else the last line, of stderr when there is one", () => {
    const err = (...msgs: string[]) => msgs.map((msg) => ({ stream: 'stderr' as const, msg }));
    const out = (...msgs: string[]) => msgs.map((msg) => ({ stream: 'stdout' as const, msg }));
    expect(tellingLine(err('file:///app/server.js:7', "let greeting = 'x';", '    ^', '', "SyntaxError: Identifier 'greeting' has already been declared", '    at x', '', 'Node.js v20.19.0'))).toBe("SyntaxError: Identifier 'greeting' has already been declared");
    expect(tellingLine(out('booting', 'done', ''))).toBe('done');
    // What it wrote to stderr, wherever a runtime put it among stdout's lines.
    expect(tellingLine([...err('boom'), ...out('booting')])).toBe('boom');
    expect(tellingLine([])).toBeUndefined();
  });
});
