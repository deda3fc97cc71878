/**
 * Follows a file a detached job writes its stdout or stderr to, line by line, from a byte offset:
 * on each change (inotify through `fs.watch`) and every `pollMs` in case a change was missed. A new
 * agent resumes where the last recorded line ended, so no line is lost or repeated across restarts.
 */
import { type FSWatcher, watch } from 'node:fs';
import { open } from 'node:fs/promises';

/** A line longer than this is cut into pieces (a job that never writes a newline cannot grow memory). */
const MAX_LINE_BYTES = 64 * 1024;

export class OutputTail {
  private offset: number;
  private rest = Buffer.alloc(0);
  private reading: Promise<void> = Promise.resolve();
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;

  /** `onLine` gets each line and the byte offset just after it in the file. */
  constructor(
    private readonly file: string,
    offset: number,
    private readonly onLine: (line: string, end: number) => void,
  ) {
    this.offset = offset;
  }

  start(pollMs: number): void {
    try {
      this.watcher = watch(this.file, () => void this.read());
      this.watcher.on('error', () => {});
    } catch {
      // no inotify: the poll alone
    }
    this.timer = setInterval(() => void this.read(), pollMs);
    this.timer.unref();
    void this.read();
  }

  /** Read what is new, after any read in progress. */
  read(): Promise<void> {
    this.reading = this.reading.then(() => this.readNow()).catch(() => {});
    return this.reading;
  }

  /** Stop following (the job keeps running; a new agent resumes at the last line recorded). */
  stop(): void {
    this.watcher?.close();
    if (this.timer) clearInterval(this.timer);
  }

  /** Stop following; read the rest, including a last line without a newline. */
  async finish(): Promise<void> {
    this.stop();
    await this.read();
    if (this.rest.length > 0) this.emit(this.rest);
    this.rest = Buffer.alloc(0);
  }

  private async readNow(): Promise<void> {
    const handle = await open(this.file, 'r').catch(() => undefined);
    if (!handle) return;
    try {
      const chunk = Buffer.alloc(64 * 1024);
      for (;;) {
        const { bytesRead } = await handle.read(chunk, 0, chunk.length, this.offset + this.rest.length);
        if (bytesRead === 0) return;
        this.rest = Buffer.concat([this.rest, chunk.subarray(0, bytesRead)]);
        let nl: number;
        while ((nl = this.rest.indexOf(0x0a)) !== -1) this.emit(this.rest.subarray(0, nl), 1);
        while (this.rest.length >= MAX_LINE_BYTES) this.emit(this.rest.subarray(0, MAX_LINE_BYTES));
      }
    } finally {
      await handle.close();
    }
  }

  /** Hand out `line` (the start of `rest`) and drop it and `skip` more bytes (its newline). */
  private emit(line: Buffer, skip = 0): void {
    const text = line.toString('utf8');
    this.offset += line.length + skip;
    this.rest = this.rest.subarray(line.length + skip);
    this.onLine(text.endsWith('\r') ? text.slice(0, -1) : text, this.offset);
  }
}
