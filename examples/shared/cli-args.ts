/**
 * Flag parsing for the example binaries: every flag with its environment twin and default, one
 * usage text built from the same table, `--help`/`-h` (usage on stdout, exit 0), and a bad command
 * line answered with one line + usage on stderr and exit 2, a bad value with one line and exit 2
 * (never a stack). Flags win over env,
 * env over the default; an empty env variable counts as unset.
 *
 * ```ts
 * const cli = parseCli({
 *   name: 'flynn-ts', usage: 'npm start -- [flags]', summary: 'The one-process cluster.',
 *   flags: { 'router-port': { type: 'string', value: 'N', env: 'FLYNN_ROUTER_PORT', default: '8080', help: 'router HTTP port' } },
 * });
 * const port = cli.port('router-port');
 * ```
 */
import { parseArgs } from 'node:util';
import { BootstrapPortInUseError, COMPONENT_NAMES, type ListeningComponent } from '../../src/bootstrap/errors.js';

/** One flag of a binary. */
export interface FlagSpec {
  type: 'string' | 'boolean';
  /** One-letter alias (`-v`). */
  short?: string;
  /** Placeholder of the value in the usage (`N`, `DIR`, `auto|docker|process`). Default `VALUE`. */
  value?: string;
  /** Environment variable read when the flag is not given (a boolean env is true for `1`/`true`/`yes`). */
  env?: string;
  /** Value when neither the flag nor its env is set. */
  default?: string | boolean;
  /** What the flag does, for the usage (one line). */
  help: string;
}

export type FlagSpecs = Record<string, FlagSpec>;

/** The parsed flags: booleans are booleans, strings with a default are strings, the rest may be undefined. */
export type FlagValues<F extends FlagSpecs> = {
  [K in keyof F]: F[K]['type'] extends 'boolean' ? boolean : F[K] extends { default: string } ? string : string | undefined;
};

export interface CliSpec<F extends FlagSpecs> {
  /** Prefix of error lines (`flynn-ts`, `bootstrap`). */
  name: string;
  /** The synopsis after `usage: ` (`npm start -- [flags]`, `tsx examples/bootstrap/main.ts MANIFEST [flags]`). */
  usage: string;
  /** One or two lines on what the binary does. */
  summary: string;
  flags: F;
  /** Accept arguments that are not flags (else one is a usage error). Default false. */
  positionals?: boolean;
  /** Text after the flag table (environment without a flag, examples). */
  notes?: string;
}

export interface Cli<F extends FlagSpecs> {
  values: FlagValues<F>;
  positionals: string[];
  /** The full usage text. */
  usage: string;
  /** Print `<name>: <message> (see --help)` on stderr, exit 2: a flag's value that cannot be used. */
  fail(message: string): never;
  /** The flag's value as a port (0-65535), or {@link fail}. */
  port(flag: keyof F & string): number;
  /** The flag's value as an integer ≥ `min` (default 0), or {@link fail}; undefined when unset. */
  integer(flag: keyof F & string, min?: number): number | undefined;
  /** The flag's value, which must be one of `choices`, or {@link fail}. */
  oneOf<T extends string>(flag: keyof F & string, choices: readonly T[]): T;
}

export const TRUE_WORDS = new Set(['1', 'true', 'yes', 'on']);

/** The usage text of a spec: synopsis, summary, one line per flag with its env twin and default. */
export function formatUsage<F extends FlagSpecs>(spec: CliSpec<F>): string {
  const rows: [string, string][] = Object.entries(spec.flags).map(([name, f]) => {
    const left = `${f.short ? `-${f.short}, ` : '    '}--${name}${f.type === 'string' ? ` ${f.value ?? 'VALUE'}` : ''}`;
    const extra = [f.env ? `env ${f.env}` : '', f.default !== undefined && f.default !== false && f.default !== '' ? `default ${String(f.default)}` : ''].filter(Boolean).join(', ');
    return [left, extra ? `${f.help} (${extra})` : f.help];
  });
  rows.push(['-h, --help', 'print this help and exit']);
  const width = Math.min(40, Math.max(...rows.map(([l]) => l.length)) + 2);
  const table = rows.map(([l, r]) => `  ${l.padEnd(width)}${l.length >= width ? `\n  ${' '.repeat(width)}` : ''}${r}`).join('\n');
  return `usage: ${spec.usage}\n\n${spec.summary}\n\nflags:\n${table}\n${spec.notes ? `\n${spec.notes.trimEnd()}\n` : ''}`;
}

/**
 * Parse `argv` (default `process.argv.slice(2)`) against `spec`. `--help` prints the usage and
 * exits 0; an unknown flag, a flag without its value or an unexpected argument exits 2.
 */
export function parseCli<F extends FlagSpecs>(spec: CliSpec<F>, argv: string[] = process.argv.slice(2), env: NodeJS.ProcessEnv = process.env): Cli<F> {
  const usage = formatUsage(spec);
  // A command line of the wrong shape gets the usage; a bad value gets one line.
  const misuse = (message: string): never => {
    process.stderr.write(`${spec.name}: ${message}\n${usage}`);
    process.exit(2);
  };
  const fail = (message: string): never => {
    process.stderr.write(`${spec.name}: ${message} (see --help)\n`);
    process.exit(2);
  };
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = { help: { type: 'boolean', short: 'h' } };
  for (const [name, f] of Object.entries(spec.flags)) options[name] = { type: f.type, ...(f.short ? { short: f.short } : {}) };

  // Non-strict + tokens: the problems are reported here, in one line each, not as Node's errors.
  const parsed = parseArgs({ args: argv, options, strict: false, allowPositionals: true, tokens: true });
  for (const token of parsed.tokens) {
    if (token.kind === 'option') {
      const flag = spec.flags[token.name];
      if (token.name === 'help') continue;
      if (!flag) misuse(`unknown flag ${token.rawName}`);
      else if (flag.type === 'string' && (token.value === undefined || token.value.startsWith('--'))) misuse(`${token.rawName} needs a value: ${token.rawName} ${flag.value ?? 'VALUE'}`);
      else if (flag.type === 'boolean' && token.inlineValue) misuse(`${token.rawName} takes no value`);
    } else if (token.kind === 'positional' && !spec.positionals) {
      misuse(`unexpected argument ${JSON.stringify(token.value)}`);
    }
  }
  if (parsed.values.help === true) {
    process.stdout.write(usage);
    process.exit(0);
  }

  const values: Record<string, string | boolean | undefined> = {};
  for (const [name, f] of Object.entries(spec.flags)) {
    const given = parsed.values[name];
    const fromEnv = f.env ? env[f.env] : undefined;
    if (given !== undefined) values[name] = given;
    else if (fromEnv !== undefined && fromEnv !== '') values[name] = f.type === 'boolean' ? TRUE_WORDS.has(fromEnv.toLowerCase()) : fromEnv;
    else values[name] = f.default ?? (f.type === 'boolean' ? false : undefined);
  }

  const source = (flag: string) => {
    const f = spec.flags[flag];
    return parsed.values[flag] === undefined && f?.env && env[f.env] ? `${f.env}` : `--${flag}`;
  };
  const integer = (flag: string, min = 0): number | undefined => {
    const v = values[flag];
    if (v === undefined) return undefined;
    const n = Number(v);
    return typeof v === 'string' && /^\d+$/.test(v.trim()) && n >= min ? n : fail(`${source(flag)} must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
  };
  return {
    values: values as FlagValues<F>,
    positionals: parsed.positionals,
    usage,
    fail,
    integer,
    port(flag) {
      const v = values[flag];
      const n = Number(v);
      return typeof v === 'string' && /^\d{1,5}$/.test(v.trim()) && n <= 65535 ? n : fail(`${source(flag)} must be a port (0-65535, 0 = any free port), got ${JSON.stringify(v)}`);
    },
    oneOf(flag, choices) {
      const v = values[flag];
      return typeof v === 'string' && (choices as readonly string[]).includes(v) ? (v as (typeof choices)[number]) : fail(`${source(flag)} must be ${choices.join(', ')}; got ${JSON.stringify(v)}`);
    },
  };
}

/**
 * The one line for an error that stops a binary at start: a busy port names the component, the
 * address and how to pick another (`hint[component]`, e.g. `--shelf-port N`); other errors are
 * their message and code. Never a stack.
 */
export function startFailure(err: unknown, hint: Partial<Record<ListeningComponent, string>> = {}): string {
  if (err instanceof BootstrapPortInUseError) {
    const how = hint[err.component] ?? `${err.option}: N`;
    return `the ${COMPONENT_NAMES[err.component]} cannot listen on ${err.host}:${err.port}: the port is in use (another cluster?). Pick another with ${how} (0 = any free port)`;
  }
  const code = (err as { code?: unknown } | undefined)?.code;
  return `${err instanceof Error ? err.message : String(err)}${typeof code === 'string' && code.startsWith('FLYNN_ERR_') ? ` (${code})` : ''}`;
}

/**
 * A listen error of a single-component binary (shelf, router, controller, discoverd) as one line:
 * `cannot listen on 127.0.0.1:8082: the port is in use. Pick another with --port N`; undefined
 * when `err` is not about the address.
 */
export function listenFailure(err: unknown, what: string, addr: string, flag: string): string | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    const { code, address, port } = e as NodeJS.ErrnoException & { address?: string; port?: number };
    // The address the listen failed on, when the error has it (a binary may listen on two).
    if (typeof address === 'string' && typeof port === 'number') addr = `${address.includes(':') ? `[${address}]` : address}:${port}`;
    if (code === 'EADDRINUSE') return `the ${what} cannot listen on ${addr}: the port is in use. Pick another with ${flag}`;
    if (code === 'EACCES') return `the ${what} cannot listen on ${addr}: permission denied (ports below 1024 need privileges). Pick another with ${flag}`;
    if (code === 'EADDRNOTAVAIL') return `the ${what} cannot listen on ${addr}: no such local address. Pick another with ${flag}`;
  }
  return undefined;
}
