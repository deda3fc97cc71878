import type { ServerResponse } from 'node:http';
import { streamError } from './stream-error.js';

/** One Server-Sent Event. `id` is set on every event flynn-ts sends so clients can resume. */
export interface SseEvent {
  id?: string;
  event?: string;
  data: string;
}

export interface SseWriterOptions {
  /** A comment line is sent this often so proxies and clients see the stream is alive. Default 15 s. */
  keepAliveMs?: number;
}

/**
 * Writes Server-Sent Events to a raw Node response (use `reply.hijack()` in fastify first).
 * `closed` resolves when the client goes away or `end()` is called.
 */
export class SseWriter {
  readonly closed: Promise<void>;
  private done = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly res: ServerResponse,
    options: SseWriterOptions = {},
  ) {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.flushHeaders();
    this.timer = setInterval(() => this.res.write(': keep-alive\n\n'), options.keepAliveMs ?? 15_000);
    this.timer.unref();
    this.closed = new Promise((resolve) => {
      res.once('close', () => {
        this.done = true;
        clearInterval(this.timer);
        resolve();
      });
    });
  }

  get isClosed(): boolean {
    return this.done;
  }

  send(event: SseEvent): void {
    if (this.done) return;
    let frame = '';
    if (event.id !== undefined) frame += `id: ${event.id}\n`;
    if (event.event !== undefined) frame += `event: ${event.event}\n`;
    for (const line of event.data.split('\n')) frame += `data: ${line}\n`;
    this.res.write(frame + '\n');
  }

  /** Send a JSON payload as one event. */
  sendJson(event: string, data: unknown, id?: string): void {
    this.send({ event, data: JSON.stringify(data), ...(id === undefined ? {} : { id }) });
  }

  /** Send `err` as an `error` event the client rebuilds into the same class (`errorFromStream`). */
  sendError(err: unknown, id?: string): void {
    this.sendJson('error', streamError(err), id);
  }

  end(): void {
    if (this.done) return;
    this.done = true;
    clearInterval(this.timer);
    this.res.end();
  }
}

/** Parse a byte stream of Server-Sent Events (per the WHATWG event-stream format). */
export async function* parseSse(body: AsyncIterable<Uint8Array | string>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  let pending = '';
  let data: string[] = [];
  let event: string | undefined;
  let id: string | undefined;
  for await (const chunk of body) {
    pending += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    let newline: number;
    while ((newline = pending.search(/\r\n|\n|\r/)) !== -1) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + (pending.startsWith('\r\n', newline) ? 2 : 1));
      if (line === '') {
        if (data.length > 0) {
          const out: SseEvent = { data: data.join('\n') };
          if (event !== undefined) out.event = event;
          if (id !== undefined) out.id = id;
          yield out;
        }
        data = [];
        event = undefined;
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'data') data.push(value);
      else if (field === 'event') event = value;
      else if (field === 'id') id = value;
    }
  }
}
