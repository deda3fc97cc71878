import { parseFields, startLine } from './h1-fields.js';

/**
 * A strict, incremental HTTP/1.1 response parser for the router's own backend connections
 * (h1-pool.ts), written from RFC 9112. It is strict on purpose: whatever it does not understand
 * exactly is a {@link ResponseError} (the client gets a 502 and the connection is closed), never a
 * guess, so a backend cannot make the router mis-frame a response (response splitting/smuggling):
 *
 * - status line `HTTP/1.0|1.1 NNN reason`, header lines `token: value` with CRLF endings only: no
 *   bare LF or CR, no obs-fold, no space before the colon, no control characters in values;
 * - framing (§6.3): no body for HEAD, 1xx, 204 and 304; else `Transfer-Encoding: chunked` (the only
 *   coding accepted, and never together with `Content-Length`), else `Content-Length` (digits only;
 *   repeated values must agree), else the body runs to the connection's end;
 * - interim 1xx heads (100, 102, 103) are skipped; a 101 is an error (the router did not ask for an
 *   upgrade on these connections);
 * - chunk sizes are hex digits (at most 15), chunk extensions are skipped, each chunk's data must be
 *   followed by CRLF, trailer fields are checked and dropped (the node engine does not forward
 *   trailers);
 * - bytes after the end of the response make the connection unusable (`reusable` false): one
 *   request gets at most one response.
 */

/** Largest response head (status line and fields) and trailer section accepted. */
export const MAX_HEAD_BYTES = 64 * 1024;
/** Longest chunk-size line (size and extensions). */
const MAX_CHUNK_LINE = 4096;

/** A response the router refuses to forward; the connection it came on is closed. */
export class ResponseError extends Error {
  readonly code = 'bad-response';
}

/** What the parser reports, in order: one head, body chunks, one end. */
export interface ResponseSink {
  /** The final head (status >= 200); `headers` is flat `[name, value, ...]`, names as sent. */
  onHead(status: number, headers: string[]): void;
  /** A piece of the body, framing removed (a view into the fed buffer). */
  onBody(chunk: Buffer): void;
  /** The response is complete; `reusable` says whether another request may use the connection. */
  onEnd(reusable: boolean): void;
}

const enum State {
  Idle,
  Head,
  Length,
  ChunkSize,
  ChunkData,
  ChunkDataEnd,
  Trailers,
  UntilClose,
}

/* eslint-disable no-control-regex -- the grammar's point is to refuse control characters */
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: [^\x00-\x08\x0a-\x1f\x7f]*)?$/;
const CHUNK_LINE = /^([0-9A-Fa-f]{1,15})[ \t]*(?:;[^\x00-\x08\x0a-\x1f\x7f]*)?$/;
/* eslint-enable no-control-regex */
const DIGITS = /^\d{1,15}$/;
const KEEP_ALIVE_TIMEOUT = /(?:^|[,;\s])timeout=(\d{1,9})/i;

/** One backend connection's parser: {@link expect} before each request, then {@link feed} what arrives. */
export class ResponseParser {
  private state = State.Idle;
  private noBody = false;
  /** Head or line bytes gathered across packets. */
  private partial: Buffer | undefined;
  /** Bytes left in a `Content-Length` body or in the current chunk. */
  private remaining = 0;
  private reusable = true;
  private trailerBytes = 0;
  private seen = false;
  /** The backend's `Keep-Alive: timeout=N` in ms, when the last response had one. */
  keepAliveMs: number | undefined;

  constructor(private readonly sink: ResponseSink) {}

  /** A request was sent: parse its response (`head` for a HEAD request, whose response has no body). */
  expect(head: boolean): void {
    this.state = State.Head;
    this.noBody = head;
    this.partial = undefined;
    this.trailerBytes = 0;
    this.seen = false;
  }

  /** True while a response is expected or being read. */
  get busy(): boolean {
    return this.state !== State.Idle;
  }

  /** True once any byte of the current response arrived (a failure before that may be retried). */
  get started(): boolean {
    return this.seen;
  }

  /** Parse bytes from the backend. Throws {@link ResponseError}; calls the sink as parts complete. */
  feed(buf: Buffer): void {
    let at = 0;
    this.seen = true;
    while (at < buf.length) {
      switch (this.state) {
        case State.Idle:
          // Nothing was asked: the connection is no longer in step with its requests.
          throw new ResponseError('backend sent bytes with no request outstanding');
        case State.Head:
          at = this.readHead(buf, at);
          break;
        case State.Length: {
          const n = Math.min(this.remaining, buf.length - at);
          this.sink.onBody(buf.subarray(at, at + n));
          at += n;
          this.remaining -= n;
          if (this.remaining === 0) this.finish(at < buf.length);
          break;
        }
        case State.ChunkSize:
          at = this.readChunkSize(buf, at);
          break;
        case State.ChunkData: {
          const n = Math.min(this.remaining, buf.length - at);
          this.sink.onBody(buf.subarray(at, at + n));
          at += n;
          this.remaining -= n;
          if (this.remaining === 0) {
            this.state = State.ChunkDataEnd;
            this.remaining = 2;
          }
          break;
        }
        case State.ChunkDataEnd: {
          // The CRLF after a chunk's data, possibly split across packets.
          const expected = this.remaining === 2 ? 13 : 10;
          if (buf[at] !== expected) throw new ResponseError('chunk data not followed by CRLF');
          at++;
          if (--this.remaining === 0) this.state = State.ChunkSize;
          break;
        }
        case State.Trailers:
          at = this.readTrailers(buf, at);
          break;
        case State.UntilClose:
          this.sink.onBody(at === 0 ? buf : buf.subarray(at));
          at = buf.length;
          break;
      }
    }
  }

  /** The backend closed its side: completes a body delimited by the close, else the response is cut short. */
  eof(): void {
    if (this.state === State.UntilClose) {
      this.state = State.Idle;
      this.sink.onEnd(false);
      return;
    }
    if (this.state !== State.Idle) throw new ResponseError('backend closed the connection before the response ended');
  }

  /** Gather bytes up to the end of a line-oriented section (`\r\n\r\n` for a head, `\r\n` for a line). */
  private gather(buf: Buffer, at: number, terminator: string, limit: number, what: string): { text: string; next: number } | undefined {
    const prev = this.partial;
    const data = prev ? Buffer.concat([prev, buf.subarray(at)]) : at === 0 ? buf : buf.subarray(at);
    const from = prev ? Math.max(0, prev.length - terminator.length + 1) : 0;
    const end = data.indexOf(terminator, from, 'latin1');
    if (end < 0 || end > limit) {
      if (data.length > limit) throw new ResponseError(`${what} longer than ${limit} bytes`);
      this.partial = Buffer.from(data);
      return undefined;
    }
    this.partial = undefined;
    const used = end + terminator.length - (prev ? prev.length : 0);
    return { text: data.toString('latin1', 0, end), next: at + used };
  }

  private readHead(buf: Buffer, at: number): number {
    const got = this.gather(buf, at, '\r\n\r\n', MAX_HEAD_BYTES, 'response head');
    if (!got) return buf.length;
    const start = startLine(got.text);
    const m = STATUS_LINE.exec(start.line);
    if (!m) throw new ResponseError('malformed status line');
    const status = Number(m[2]);
    if (status > 599) throw new ResponseError(`status ${status} out of range`);
    if (status === 101) throw new ResponseError('101 Switching Protocols to a request without Upgrade');
    const headers: string[] = [];
    if (!parseFields(got.text, start.fields, headers)) throw new ResponseError('malformed header line');
    let length: string | undefined;
    let chunked = false;
    let close = m[1] === '0';
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i] as string;
      const value = headers[i + 1] as string;
      switch (name.length) {
        case 10: {
          const lower = name.toLowerCase();
          if (lower === 'connection') {
            if (/(?:^|,)[ \t]*close[ \t]*(?:,|$)/i.test(value)) close = true;
          } else if (lower === 'keep-alive') {
            const t = KEEP_ALIVE_TIMEOUT.exec(value);
            if (t) this.keepAliveMs = Number(t[1]) * 1000;
          }
          break;
        }
        case 14:
          if (name.toLowerCase() === 'content-length') length = sameLength(length, value);
          break;
        case 17:
          if (name.toLowerCase() === 'transfer-encoding') {
            if (chunked || value.toLowerCase() !== 'chunked') throw new ResponseError(`unsupported transfer-encoding "${value}"`);
            chunked = true;
          }
          break;
      }
    }
    if (chunked && length !== undefined) throw new ResponseError('both transfer-encoding and content-length');
    if (status < 200) {
      // An interim answer (100 Continue, 103 Early Hints...): the final head follows.
      return got.next;
    }
    this.reusable = !close;
    this.sink.onHead(status, headers);
    if (this.noBody || status === 204 || status === 304) this.finish(got.next < buf.length);
    else if (chunked) this.state = State.ChunkSize;
    else if (length !== undefined) {
      this.remaining = Number(length);
      this.state = State.Length;
      if (this.remaining === 0) this.finish(got.next < buf.length);
    } else {
      this.reusable = false;
      this.state = State.UntilClose;
    }
    return got.next;
  }

  private readChunkSize(buf: Buffer, at: number): number {
    const got = this.gather(buf, at, '\r\n', MAX_CHUNK_LINE, 'chunk-size line');
    if (!got) return buf.length;
    const m = CHUNK_LINE.exec(got.text);
    if (!m) throw new ResponseError('malformed chunk-size line');
    const size = parseInt(m[1] as string, 16);
    if (size === 0) this.state = State.Trailers;
    else {
      this.remaining = size;
      this.state = State.ChunkData;
    }
    return got.next;
  }

  /** The trailer section after the last chunk: field lines until an empty line, checked and dropped. */
  private readTrailers(buf: Buffer, at: number): number {
    const got = this.gather(buf, at, '\r\n', MAX_HEAD_BYTES, 'trailer line');
    if (!got) return buf.length;
    this.trailerBytes += got.text.length + 2;
    if (this.trailerBytes > MAX_HEAD_BYTES) throw new ResponseError(`trailer section longer than ${MAX_HEAD_BYTES} bytes`);
    if (got.text === '') {
      this.finish(got.next < buf.length);
      return got.next;
    }
    if (!parseFields(got.text, 0, [])) throw new ResponseError('malformed trailer line');
    return got.next;
  }

  /**
   * The response is complete; `more` says bytes follow it in the same read. Those answer no request:
   * the connection is not reused, and {@link feed} goes on to throw on them (state Idle).
   */
  private finish(more: boolean): void {
    this.state = State.Idle;
    this.sink.onEnd(this.reusable && !more);
  }
}

/** `Content-Length` as one decimal value: repeated or comma-listed values must all agree (RFC 9110 §8.6). */
function sameLength(previous: string | undefined, value: string): string {
  let result = previous;
  for (const part of value.split(',')) {
    const v = part.trim();
    if (!DIGITS.test(v)) throw new ResponseError(`invalid content-length "${value}"`);
    const n = String(Number(v));
    if (result !== undefined && result !== n) throw new ResponseError('conflicting content-length values');
    result = n;
  }
  return result as string;
}
