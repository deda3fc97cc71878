import { parseArgs } from 'node:util';
import { appCommands } from './commands-app.js';
import { clusterCommands } from './commands-cluster.js';
import { CommandContext, type CliIo, type Command, type GlobalFlags, type OptionSpec, type Values } from './context.js';
import { CliError } from './errors.js';

export const COMMANDS: readonly Command[] = [...clusterCommands, ...appCommands];

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
  if (!cmd) return fail(io, new CliError(`unknown command ${JSON.stringify(name)} (see flynn --help)`, { usage: true }));
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

function fail(io: CliIo, err: unknown): number {
  const message = (err as Error)?.message ?? String(err);
  io.stderr(`flynn: ${message.split('\n')[0]}\n`);
  return err instanceof CliError ? err.exitCode : 1;
}
