/**
 * The client side of an interactive run (`GET /apps/:app/run`, upgraded; see run-attach.ts for
 * the server): a {@link RunSession} that sends the job its stdin, terminal size and signals, and
 * hands back its output and exit status.
 */
import type { Duplex } from 'node:stream';
import { AsyncQueue } from '../common/async-queue.js';
import { errorFromWire, type WireError } from '../common/errors.js';
import { FrameChannel, FrameType, frameJson } from '../common/http/frames.js';
import type { AttachRunInput } from './types.js';

/** Options of `client.run(app, cmd, options)`. */
export interface RunOptions {
  /** Extra env over the release's. */
  env?: Record<string, string>;
  /** Give the job a pseudo-terminal: stdin carries keystrokes as they are (Ctrl-C included), all output comes as `stdout`. Default false. */
  tty?: boolean;
  /** The terminal's size at the start (with `tty`); later changes go through {@link RunSession.resize}. */
  size?: { cols: number; rows: number };
  /**
   * What the job reads: a stream (a terminal in raw mode, a pipe), a string or bytes; its end closes the job's stdin (not with `tty`:
   * send Ctrl-D, `\x04`, as a terminal does). Default: nothing (EOF at once), unless `'manual'` (then `write`/`end`).
   */
  stdin?: AsyncIterable<Uint8Array | string> | string | Uint8Array | 'manual';
  /** Memory limit of the job in MB. Default none. */
  memoryMb?: number;
  /** Aborting closes the connection, which stops the job. */
  signal?: AbortSignal;
}

/** A chunk of a run's output. */
export interface RunChunk {
  stream: 'stdout' | 'stderr';
  data: Buffer;
}

/** A running interactive job. */
export interface RunSession {
  /** The job's id, once it has started; rejects like `exit`. */
  readonly id: Promise<string>;
  /** Its output, in order, until it ends. */
  readonly output: AsyncIterable<RunChunk>;
  /** Its exit status; rejects with the server's error when the run failed (no such app, no release, cannot start...). */
  readonly exit: Promise<number>;
  /** Send bytes to its stdin (with `stdin: 'manual'`). */
  write(data: Uint8Array | string): void;
  /** Close its stdin (with `stdin: 'manual'`); with a tty this hangs the terminal up: send Ctrl-D (`\x04`) instead. */
  end(): void;
  resize(cols: number, rows: number): void;
  /** Send a signal (`SIGINT`) to its process. */
  kill(signal?: string): void;
  /** Drop the connection: the job is stopped. */
  close(): void;
}

/** Open a run over `connect()` (the upgraded connection): send `start`, then stream. */
export function openRunSession(connect: () => Promise<Duplex>, input: AttachRunInput, options: RunOptions): RunSession {
  const output = new AsyncQueue<RunChunk>();
  let channel: FrameChannel | undefined;
  let closed = false;
  const queued: [number, Buffer | string][] = [];
  const send = (type: number, data: Buffer | string = '') => {
    if (channel) channel.send(type, data);
    else queued.push([type, data]);
  };
  let resolveId!: (id: string) => void;
  let rejectId!: (err: unknown) => void;
  const id = new Promise<string>((ok, ko) => ((resolveId = ok), (rejectId = ko)));
  id.catch(() => {});

  const exit = (async (): Promise<number> => {
    try {
      const ch = new FrameChannel(await connect());
      channel = ch;
      if (closed) ch.close();
      const onAbort = () => ch.close();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      ch.sendJson(FrameType.start, input);
      if (options.tty && options.size) ch.sendJson(FrameType.resize, options.size);
      for (const [type, data] of queued.splice(0)) ch.send(type, data);
      // With a tty the end of `stdin` is not sent: closing a terminal's input hangs it up (output is lost); a terminal ends input with Ctrl-D (`\x04`).
      void pumpStdin(options.stdin, options.tty ? (type, data) => type !== FrameType.eof && send(type, data) : send);
      try {
        for await (const f of ch) {
          if (f.type === FrameType.job) resolveId(String(frameJson<{ id: unknown }>(f)?.id));
          else if (f.type === FrameType.stdout || f.type === FrameType.stderr) output.push({ stream: f.type === FrameType.stderr ? 'stderr' : 'stdout', data: f.data });
          else if (f.type === FrameType.exit) return Number(frameJson<{ status: unknown }>(f)?.status ?? 1);
          else if (f.type === FrameType.error) {
            const body = frameJson<WireError & { status?: number }>(f);
            throw errorFromWire(body?.status ?? 500, body ?? { message: 'the run failed' });
          }
        }
      } finally {
        options.signal?.removeEventListener('abort', onAbort);
        ch.close();
      }
      throw new Error(options.signal?.aborted ? 'the run was aborted' : 'the connection to the controller closed before the job ended');
    } catch (err) {
      rejectId(err);
      throw err;
    } finally {
      output.end();
    }
  })();
  exit.catch(() => {});

  return {
    id,
    output,
    exit,
    write: (data) => send(FrameType.stdin, typeof data === 'string' ? data : Buffer.from(data)),
    end: () => send(FrameType.eof),
    resize: (cols, rows) => send(FrameType.resize, JSON.stringify({ cols, rows })),
    kill: (signal = 'SIGINT') => send(FrameType.signal, signal),
    close: () => {
      closed = true;
      channel?.close();
    },
  };
}

async function pumpStdin(stdin: RunOptions['stdin'], send: (type: number, data?: Buffer | string) => void): Promise<void> {
  if (stdin === 'manual') return;
  try {
    if (typeof stdin === 'string' || stdin instanceof Uint8Array) send(FrameType.stdin, typeof stdin === 'string' ? stdin : Buffer.from(stdin));
    else if (stdin !== undefined) for await (const chunk of stdin) send(FrameType.stdin, typeof chunk === 'string' ? chunk : Buffer.from(chunk));
  } finally {
    send(FrameType.eof);
  }
}
