import { parseArgs } from 'node:util';
import { appCommands } from './commands-app.js';
import { buildpackCommands } from './commands-buildpacks.js';
import { clusterCommands } from './commands-cluster.js';
import { resourceCommands } from './commands-resources.js';
import { serverCommands } from './commands-server.js';
import { strategyCommands } from './commands-strategy.js';
import { CommandContext, type CliIo, type Command, type GlobalFlags, type OptionSpec, type Values } from './context.js';
import { CliError } from './errors.js';

export const COMMANDS: readonly Command[] = [...serverCommands, ...clusterCommands, ...appCommands, ...buildpackCommands, ...strategyCommands, ...resourceCommands];

const COMMON: OptionSpec = { app: { type: 'string', short: 'a' }, help: { type: 'boolean', short: 'h' } };

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'usage: flynn [-a APP] [-c CLUSTER] COMMAND [ARGS...]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Global options: -a APP (default: the app of the "flynn" git remote), -c CLUSTER (default: the default cluster).',
    'Run "flynn COMMAND --help" for a command\'s usage.',
    '',
  ].join('\n');
}

function commandHelp(cmd: Command): string {
  const lines = [`usage: flynn ${cmd.usage}`, '', cmd.summary + '.'];
  if (cmd.help) lines.push('', cmd.help);
  return lines.join('\n') + '\n';
}

/** Split `run`'s args: its own options up to the first positional (or `--`), then the command untouched. */
function splitPassThrough(args: string[], options: OptionSpec): { own: string[]; rest: string[] } {
  const takesValue = (token: string) => {
    const name = token.startsWith('--') ? token.slice(2) : undefined;
    const entry = name !== undefined ? options[name] : Object.values(options).find((o) => o.short === token.slice(1));
    return entry?.type === 'string';
  };
  for (let i = 0; i < args.length; i++) {
    const t = args[i] as string;
    if (t === '--') return { own: args.slice(0, i), rest: args.slice(i + 1) };
    if (!t.startsWith('-') || t === '-') return { own: args.slice(0, i), rest: args.slice(i) };
    if (!t.includes('=') && takesValue(t)) i++;
  }
  return { own: args, rest: [] };
}

/** Run the `flynn` CLI; resolves with the exit code. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const flags: GlobalFlags = {};
  let i = 0;
  for (; i < argv.length; i++) {
    const t = argv[i] as string;
    if (t === '-a' || t === '--app' || t === '-c' || t === '--cluster') {
      const v = argv[++i];
      if (v === undefined) return fail(io, new CliError(`${t} needs a value`, { usage: true }));
      if (t === '-a' || t === '--app') flags.app = v;
      else flags.cluster = v;
    } else if (t === '-h' || t === '--help' || t === 'help') {
      const topic = t === 'help' ? COMMANDS.find((c) => c.name === argv[i + 1]) : undefined;
      io.stdout(topic ? commandHelp(topic) : usage());
      return 0;
    } else break;
  }
  const name = argv[i];
  if (name === undefined) {
    io.stderr(usage());
    return 2;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) {
    const near = closestCommand(name);
    return fail(io, new CliError(`unknown command ${JSON.stringify(name)}${near ? `; did you mean ${JSON.stringify(near)}?` : ' (see flynn --help)'}`, { usage: true }));
  }
  const options = { ...COMMON, ...cmd.options };
  const args = argv.slice(i + 1);
  const { own, rest } = cmd.passThrough ? splitPassThrough(args, options) : { own: args, rest: [] };
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: own, options, allowPositionals: !cmd.passThrough, strict: true }));
  } catch (err) {
    return fail(io, new CliError(`${(err as Error).message.split('\n')[0]} (usage: flynn ${cmd.usage})`, { usage: true }));
  }
  if (values.help === true) {
    io.stdout(commandHelp(cmd));
    return 0;
  }
  positionals = [...positionals, ...rest];
  const [min, max] = cmd.args ?? [0, 0];
  if (positionals.length < min || positionals.length > max) return fail(io, new CliError(`wrong number of arguments (usage: flynn ${cmd.usage})`, { usage: true }));
  const ctx = new CommandContext(io, flags, values, positionals);
  try {
    return (await cmd.run(ctx)) ?? 0;
  } catch (err) {
    return fail(io, err);
  } finally {
    await ctx.close();
  }
}

/**
 * Edit distance with adjacent transpositions (optimal string alignment): `scael` is 1 from
 * `scale`, where plain Levenshtein counts 2.
 */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  const at = (i: number, j: number) => (d[i] as number[])[j] as number;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1);
      (d[i] as number[])[j] = best;
    }
  }
  return at(a.length, b.length);
}

/** The command nearest to a mistyped name: at most 2 edits away (1 for names of up to 4 letters), ties to the first listed. */
function closestCommand(name: string): string | undefined {
  const limit = name.length <= 4 ? 1 : 2;
  let best: { name: string; distance: number } | undefined;
  for (const c of COMMANDS) {
    const distance = editDistance(name.toLowerCase(), c.name);
    if (distance <= limit && (best === undefined || distance < best.distance)) best = { name: c.name, distance };
  }
  return best?.name;
}

function fail(io: CliIo, err: unknown): number {
  const message = (err as Error)?.message ?? String(err);
  io.stderr(`flynn: ${message.split('\n')[0]}\n`);
  return err instanceof CliError ? err.exitCode : 1;
}
