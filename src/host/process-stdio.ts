/** How a process job is wired: its stdin (a pipe or a pty, pty-helper.ts) handed to the agent, and the lookup of its command. */
import type { ChildProcess } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, resolve as resolvePath } from 'node:path';
import type { Writable } from 'node:stream';
import { AsyncQueue } from '../common/async-queue.js';
import { resizePty } from './pty-helper.js';
import type { JobStdio, OutputChunk } from './runtime.js';

/** A job's stdin as a pipe. */
export function pipeStdio(stdin: Writable): JobStdio {
  stdin.on('error', () => {}); // a job that exits before reading its stdin
  return { write: (data) => void stdin.write(data), end: () => void stdin.end(), resize: async () => {} };
}

/**
 * A job on a pty (pty-helper.ts): its raw output is queued from the start (read before any await,
 * beside the line log) until the agent takes it; resizes go down the helper's control pipe.
 */
export function ttyStdio(child: ChildProcess): JobStdio {
  const output = new AsyncQueue<OutputChunk>();
  let open = 0;
  for (const stream of ['stdout', 'stderr'] as const) {
    const source = child[stream];
    if (!source) continue;
    open++;
    source.on('data', (data: Buffer) => output.push({ stream, data }));
    source.once('close', () => --open === 0 && output.end());
  }
  const stdin = child.stdin as Writable;
  stdin.on('error', () => {});
  (child.stdio[3] as Writable | null)?.on('error', () => {});
  return { output, write: (data) => void stdin.write(data), end: () => void stdin.end(), resize: async (cols, rows) => resizePty(child, cols, rows) };
}

/** Whether `command` names an executable file, as a spawn would look it up in `path` from `cwd`. */
export async function executable(command: string, path: string, cwd: string): Promise<boolean> {
  const candidates = command.includes('/') ? [resolvePath(cwd, command)] : path.split(delimiter).filter((d) => d !== '').map((d) => resolvePath(cwd, d, command));
  for (const file of candidates) if (await access(file, fsConstants.X_OK).then(() => true, () => false)) return true;
  return false;
}
