/**
 * A log file appended one line at a time (e.g. the router's access log): opened with `O_APPEND`
 * and mode 0600, moved aside to `<path>.1` (the one before removed) once it passes `maxBytes`, and
 * opened anew by {@link LogFile.reopen} (after an outside logrotate moved it; SIGHUP in the router
 * process). Writes are buffered by a stream: a request never waits on the disk.
 */
import { createWriteStream, openSync, renameSync, statSync, type WriteStream } from 'node:fs';
import { finished } from 'node:stream/promises';

export const LOG_FILE_DEFAULTS = Object.freeze({
  /** Size past which the file is moved to `<path>.1`, in bytes (0: never). */
  maxBytes: 64 * 1024 * 1024,
});

export interface LogFileOptions {
  /** Default {@link LOG_FILE_DEFAULTS}.maxBytes. */
  maxBytes?: number;
}

export interface LogFile {
  readonly path: string;
  /** Append `line` and a newline. */
  write(line: string): void;
  /** Open the path again (the file there now, or a new one). */
  reopen(): void;
  /** Flush what is buffered and close the file. */
  close(): Promise<void>;
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** Open (creating it; its directory must exist) the log file at `path` for appending. */
export function openLogFile(path: string, options: LogFileOptions = {}): LogFile {
  const maxBytes = options.maxBytes ?? LOG_FILE_DEFAULTS.maxBytes;
  // Opened at once (not when the stream gets to it): a rename right after still leaves its lines in the file it had.
  // A failed write (a full disk) loses lines; it never stops the process that logs.
  const open = (): WriteStream => createWriteStream(path, { fd: openSync(path, 'a', 0o600) }).on('error', () => undefined);
  let stream = open();
  let size = sizeOf(path);
  // Streams ended but maybe not flushed yet: close() waits for them too.
  const ending = new Set<Promise<void>>();
  const end = (s: WriteStream) => {
    const done = finished(s.end()).catch(() => undefined);
    ending.add(done);
    void done.then(() => ending.delete(done));
  };
  const swap = () => {
    // Lines still buffered in the old stream land in the file it has open (renamed or not).
    end(stream);
    stream = open();
    size = sizeOf(path);
  };
  return {
    path,
    write(line) {
      const data = `${line}\n`;
      size += Buffer.byteLength(data);
      if (maxBytes > 0 && size > maxBytes) {
        try {
          renameSync(path, `${path}.1`);
        } catch {
          // Moved or removed from outside meanwhile: the new file starts it again.
        }
        swap();
        size = Buffer.byteLength(data);
      }
      stream.write(data);
    },
    reopen: swap,
    async close() {
      end(stream);
      await Promise.all(ending);
    },
  };
}
