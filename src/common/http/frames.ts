/**
 * The attach protocol of interactive jobs (`flynn run`): after an HTTP Upgrade to
 * {@link ATTACH_PROTOCOL}, both sides exchange frames on the raw connection, each a 1-byte type, a
 * 4-byte big-endian length and the payload. The CLI talks it to the controller and the controller
 * to the host agent; the controller relays the frames as they are.
 */
import type { IncomingMessage } from 'node:http';
import { Duplex } from 'node:stream';
import { AsyncQueue } from '../async-queue.js';
import type { WireError } from '../errors.js';

/** The `Upgrade` token of the attach protocol. */
export const ATTACH_PROTOCOL = 'flynn-attach';

/** Frame types. Client → server: start, stdin, eof, resize, signal. Server → client: job, stdout, stderr, exit, error. */
export const FrameType = Object.freeze({
  /** JSON: what to run (to the controller only; see the controller's `AttachRunInput`). */
  start: 1,
  /** Raw bytes for the job's stdin (with a tty: keystrokes, Ctrl-C and Ctrl-D included). */
  stdin: 2,
  /** The client's stdin ended: the job's stdin is closed. */
  eof: 3,
  /** JSON `{ cols, rows }`: the terminal's new size. */
  resize: 4,
  /** A signal name (`SIGINT`) for the job's process. */
  signal: 5,
  /** JSON `{ id }`: the job started (first server frame). */
  job: 16,
  /** Raw output bytes (with a tty, all of it). */
  stdout: 17,
  stderr: 18,
  /** JSON `{ status }`: the job ended with this exit status; the last frame. */
  exit: 19,
  /** JSON {@link WireError}: the run failed; the last frame. */
  error: 20,
});

export interface Frame {
  type: number;
  data: Buffer;
}

const HEADER = 5;
/** Largest payload accepted: a frame is a chunk of a stream, never a whole file. */
const MAX_FRAME = 1 << 20;

/**
 * Frames over a raw connection: `send` writes one, iterating reads them until the peer closes.
 * A malformed frame (too large) destroys the connection.
 */
export class FrameChannel implements AsyncIterable<Frame> {
  private readonly frames: AsyncQueue<Frame>;

  constructor(readonly socket: Duplex, head?: Buffer) {
    this.frames = new AsyncQueue<Frame>(() => socket.destroy());
    let pending: Buffer = head && head.length > 0 ? Buffer.from(head) : Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= HEADER) {
        const size = pending.readUInt32BE(1);
        if (size > MAX_FRAME) {
          socket.destroy();
          return;
        }
        if (pending.length < HEADER + size) break;
        this.frames.push({ type: pending[0] as number, data: pending.subarray(HEADER, HEADER + size) });
        pending = pending.subarray(HEADER + size);
      }
    };
    socket.on('data', onData);
    socket.once('close', () => this.frames.end());
    socket.on('error', () => this.frames.end());
    socket.once('end', () => this.frames.end());
    if (pending.length > 0) {
      const first = pending;
      pending = Buffer.alloc(0);
      onData(first);
    }
  }

  get closed(): boolean {
    return this.socket.destroyed || this.socket.writableEnded;
  }

  /** Write one frame; false once the connection is gone. */
  send(type: number, data: Buffer | string = Buffer.alloc(0)): boolean {
    if (this.closed) return false;
    const payload = typeof data === 'string' ? Buffer.from(data) : data;
    const header = Buffer.alloc(HEADER);
    header[0] = type;
    header.writeUInt32BE(payload.length, 1);
    this.socket.write(payload.length === 0 ? header : Buffer.concat([header, payload]));
    return true;
  }

  sendJson(type: number, value: unknown): boolean {
    return this.send(type, JSON.stringify(value));
  }

  /** Send a last frame, then close the connection once it is written. */
  finish(type: number, value: unknown): void {
    if (this.closed) return;
    this.sendJson(type, value);
    this.socket.end();
  }

  close(): void {
    this.socket.destroy();
    this.frames.end();
  }

  [Symbol.asyncIterator](): AsyncIterator<Frame> {
    return this.frames[Symbol.asyncIterator]();
  }
}

/** Parse a JSON frame payload; undefined when it is not JSON. */
export function frameJson<T>(frame: Frame): T | undefined {
  try {
    return JSON.parse(frame.data.toString('utf8')) as T;
  } catch {
    return undefined;
  }
}

/** True when `req` asks to upgrade to the attach protocol. */
export function wantsAttach(req: IncomingMessage): boolean {
  return (req.headers.upgrade ?? '').toLowerCase() === ATTACH_PROTOCOL;
}

/** Answer an upgrade request with `101 Switching Protocols` and hand back the frame channel. */
export function acceptAttach(socket: Duplex, head: Buffer): FrameChannel {
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${ATTACH_PROTOCOL}\r\n\r\n`);
  return new FrameChannel(socket, head);
}

/** Refuse an upgrade request with an HTTP error and the JSON error body, then close. */
export function refuseAttach(socket: Duplex, status: number, error: WireError, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(error);
  const extra = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  socket.end(`HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : status === 404 ? 'Not Found' : 'Bad Request'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n${extra}\r\n${body}`);
}

/** One end of an in-memory connection: what it writes, its peer reads. */
class PipeEnd extends Duplex {
  peer: PipeEnd | undefined;
  override _read(): void {}
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.peer?.push(chunk);
    callback();
  }
  override _final(callback: () => void): void {
    this.peer?.push(null);
    callback();
  }
  override _destroy(err: Error | null, callback: (err: Error | null) => void): void {
    this.peer?.destroy();
    callback(err);
  }
}

/** Two frame channels connected in memory (an in-process grid, tests): what one sends the other reads. */
export function framePipe(): [FrameChannel, FrameChannel] {
  const a = new PipeEnd();
  const b = new PipeEnd();
  a.peer = b;
  b.peer = a;
  return [new FrameChannel(a), new FrameChannel(b)];
}
