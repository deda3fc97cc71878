/**
 * The layering rule as a test: no module of src/ imports itself back through others (a cycle makes
 * load order matter and hides which side owns what). Type-only imports count too: a type cycle
 * still means two files that cannot be read apart.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const SRC = resolve(import.meta.dirname, '../../src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? sourceFiles(join(dir, d.name)) : d.name.endsWith('.ts') ? [join(dir, d.name)] : []));
}

/** The project files `file` imports or re-exports (relative specifiers, `x.js` → `x.ts`). */
function importsOf(file: string): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, false);
  const out: string[] = [];
  for (const node of source.statements) {
    if (!(ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) || !node.moduleSpecifier || !ts.isStringLiteral(node.moduleSpecifier)) continue;
    const spec = node.moduleSpecifier.text;
    if (spec.startsWith('.')) out.push(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
  }
  return out;
}

/** Cycles found by a depth-first walk of `graph` (file → files it imports), each as the files around it, the first repeated last. */
function cyclesIn(graph: Map<string, string[]>): string[][] {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (f: string) => {
    state.set(f, 'open');
    stack.push(f);
    for (const next of graph.get(f) ?? []) {
      if (state.get(next) === 'open') cycles.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!state.has(next) && graph.has(next)) visit(next);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of graph.keys()) if (!state.has(f)) visit(f);
  return cycles;
}

/** A cycle as text, started at its smallest file so that the same cycle always reads the same. */
function cycleText(cycle: string[]): string {
  const ring = cycle.slice(0, -1).map((f) => relative(SRC, f));
  const start = ring.indexOf([...ring].sort()[0] as string);
  const turned = [...ring.slice(start), ...ring.slice(0, start)];
  return [...turned, turned[0]].join(' → ');
}


/** The layers (docs/architecture.md): what each may import besides itself. */
const COMMON = ['common', 'errors'];
const LAYER_0 = ['discovery', 'host', 'scheduler'];
const MAY_IMPORT: Record<string, (m: string) => boolean> = {
  common: (m) => COMMON.includes(m),
  errors: (m) => COMMON.includes(m),
  // Layer 0 never imports layer 1.
  ...Object.fromEntries(LAYER_0.map((l) => [l, (m: string) => COMMON.includes(m) || LAYER_0.includes(m)])),
};

/** The module (first folder under src/) of a file. */
const moduleOf = (file: string) => relative(SRC, file).split('/')[0] as string;

describe('src/ layering', () => {
  it('keeps the layers: common imports nothing else, layer 0 never imports layer 1, nothing imports bootstrap', () => {
    const wrong: string[] = [];
    for (const file of sourceFiles(SRC)) {
      const from = moduleOf(file);
      for (const target of importsOf(file)) {
        const to = moduleOf(target);
        if (to === from) continue;
        if (to === 'bootstrap' || (MAY_IMPORT[from] && !MAY_IMPORT[from](to))) wrong.push(`${relative(SRC, file)} → ${relative(SRC, target)}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('has no import cycle', () => {
    const cycles = cyclesIn(new Map(sourceFiles(SRC).map((f) => [f, importsOf(f)]))).map(cycleText);
    expect(cycles).toEqual([]);
  });

  it('finds a cycle when there is one', () => {
    const [a, b, c] = ['a.ts', 'b.ts', 'c.ts'].map((f) => join(SRC, f)) as [string, string, string];
    expect(cyclesIn(new Map([[a, [b]], [b, [c]], [c, []]]))).toEqual([]);
    expect(cyclesIn(new Map([[a, [b]], [b, [c]], [c, [a]]])).map(cycleText)).toEqual(['a.ts → b.ts → c.ts → a.ts']);
    const agent = join(SRC, 'host/agent.ts');
    const server = join(SRC, 'host/server.ts');
    // server.ts imports (the type of) the agent; agent.ts must not import server.ts back.
    expect(importsOf(server)).toContain(agent);
    expect(importsOf(agent)).not.toContain(server);
  });
});
