#!/usr/bin/env node
/** The `flynn` command: maps the process to {@link runCli}. */
import { createInterface } from 'node:readline';
import { runCli } from './cli.js';

let lines: AsyncIterator<string> | undefined;
const code = await runCli(process.argv.slice(2), {
  env: process.env,
  cwd: process.cwd(),
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
  readLine: async () => {
    lines ??= createInterface({ input: process.stdin })[Symbol.asyncIterator]();
    const next = await lines.next();
    return next.done ? undefined : next.value;
  },
  stdio: {
    stdin: process.stdin,
    terminalSize: () => (process.stdout.isTTY ? { cols: process.stdout.columns, rows: process.stdout.rows } : undefined),
    onResize: (fn) => {
      process.stdout.on('resize', fn);
      return () => void process.stdout.off('resize', fn);
    },
    onInterrupt: (fn) => {
      process.on('SIGINT', fn);
      return () => void process.off('SIGINT', fn);
    },
    write: (stream, data) => void (stream === 'stderr' ? process.stderr : process.stdout).write(data),
  },
});
// Let stdout drain before exiting with the command's status.
process.stdout.write('', () => process.exit(code));
