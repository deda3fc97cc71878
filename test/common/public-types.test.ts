/**
 * The public faces speak flynn-ts types only: the declarations (.d.ts) of every package export,
 * followed through every exported name, name no type of a third-party package (undici, fastify,
 * acme-client, dockerode, etcd3, ssh2...). Node's own types are fine. A user then never depends on
 * a dependency's version through our signatures, and a dependency can be swapped.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const OUT = resolve(ROOT, '.public-types'); // in memory only: nothing is written there
const pkg = JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, { import: string }>; dependencies: Record<string, string> };
const entries = Object.values(pkg.exports).map((e) => resolve(ROOT, e.import.replace(/^\.\/dist\//, 'src/').replace(/\.js$/, '.ts')));
const foreign = new RegExp(`/node_modules/(${Object.keys(pkg.dependencies).join('|')}|@fastify|light-my-request|pino)/`);

/** Emit the declarations of the entries (and what they import) into a map, as tsup's dts does. */
function declarations(): Map<string, string> {
  const config = ts.getParsedCommandLineOfConfigFile(resolve(ROOT, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} });
  if (!config) throw new Error('cannot read tsconfig.json');
  const options: ts.CompilerOptions = { ...config.options, noEmit: false, declaration: true, emitDeclarationOnly: true, rootDir: ROOT, outDir: OUT, skipLibCheck: true, incremental: false, composite: false, tsBuildInfoFile: undefined };
  const files = new Map<string, string>();
  ts.createProgram(entries, options).emit(undefined, (name, text) => files.set(name, text));
  return files;
}

/** Where each foreign type is reached from: `entry:export > Type > Type > foreign.Name`. */
function foreignTypes(dts: Map<string, string>): string[] {
  const host = ts.createCompilerHost({});
  const read = host.readFile.bind(host);
  host.readFile = (name) => dts.get(name) ?? read(name);
  const exists = host.fileExists.bind(host);
  host.fileExists = (name) => dts.has(name) || exists(name);
  const dirExists = host.directoryExists?.bind(host);
  host.directoryExists = (dir) => dir.startsWith(OUT) || (dirExists?.(dir) ?? true);
  const dtsEntries = entries.map((e) => e.replace(ROOT, OUT).replace(/\.ts$/, '.d.ts'));
  // Bare imports resolve from the project's node_modules, as the files sit in the project's folder.
  const program = ts.createProgram(dtsEntries, { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, skipLibCheck: true, types: ['node'] }, host);
  const checker = program.getTypeChecker();
  const found = new Map<string, string>();
  const seen = new Set<ts.Node>();
  const follow = (decl: ts.Node, path: string[]): void => {
    if (seen.has(decl)) return;
    seen.add(decl);
    const visit = (node: ts.Node): void => {
      if (ts.canHaveModifiers(node) && ts.getModifiers(node)?.some((m) => m.kind === ts.SyntaxKind.PrivateKeyword)) return;
      const name = ts.isTypeReferenceNode(node) ? node.typeName : ts.isExpressionWithTypeArguments(node) ? node.expression : ts.isTypeQueryNode(node) ? node.exprName : ts.isImportTypeNode(node) ? node.qualifier : undefined;
      if (name) {
        let symbol = checker.getSymbolAtLocation(name);
        if (symbol && symbol.flags & ts.SymbolFlags.Alias) symbol = checker.getAliasedSymbol(symbol);
        for (const d of symbol?.declarations ?? []) {
          const file = d.getSourceFile().fileName;
          const pkgName = foreign.exec(file)?.[1];
          if (pkgName) found.set(`${path[0]} ${pkgName}.${symbol?.name}`, [...path, `${pkgName}.${symbol?.name}`].join(' > '));
          else if (file.startsWith(OUT)) follow(d, [...path, symbol?.name ?? '?']);
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(decl);
  };
  for (const entry of dtsEntries) {
    const source = program.getSourceFile(entry);
    const module = source && checker.getSymbolAtLocation(source);
    if (!module) throw new Error(`no declarations for ${entry}`);
    for (const exported of checker.getExportsOfModule(module)) {
      const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
      for (const d of symbol.declarations ?? []) follow(d, [`${entry.replace(`${OUT}/src/`, '')}:${exported.name}`]);
    }
  }
  return [...found.values()].sort();
}

describe('public types', () => {
  it('no exported signature names a type of a dependency', () => {
    expect(foreignTypes(declarations())).toEqual([]);
  }, 120_000);
});
