/** The logger every component takes. Silent by default in the library; the example binaries pass a real one. */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  /** A logger that adds `bindings` to every line, e.g. `{ component: 'router' }`. */
  child(bindings: Record<string, unknown>): Logger;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};

export interface ConsoleLoggerOptions {
  /** Lowest level written. Default `info`. */
  level?: LogLevel;
  /** One JSON object per line instead of human-readable text. Default false. */
  json?: boolean;
  /** Where lines go. Default process.stderr. */
  write?: (line: string) => void;
}

/** A small line logger for binaries: `12:00:01 info  [router] listening addr=127.0.0.1:8080`. */
export function createConsoleLogger(options: ConsoleLoggerOptions = {}, bindings: Record<string, unknown> = {}): Logger {
  const min = LEVELS[options.level ?? 'info'];
  const write = options.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const emit = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (LEVELS[level] < min) return;
    const all = { ...bindings, ...fields };
    if (options.json) {
      write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...all }));
      return;
    }
    const { component, ...rest } = all;
    const tag = component === undefined ? '' : `[${String(component)}] `;
    const kv = Object.entries(rest)
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join(' ');
    write(`${new Date().toISOString().slice(11, 19)} ${level.padEnd(5)} ${tag}${msg}${kv ? ' ' + kv : ''}`);
  };
  return {
    debug: (msg, fields) => emit('debug', msg, fields),
    info: (msg, fields) => emit('info', msg, fields),
    warn: (msg, fields) => emit('warn', msg, fields),
    error: (msg, fields) => emit('error', msg, fields),
    child: (more) => createConsoleLogger(options, { ...bindings, ...more }),
  };
}
