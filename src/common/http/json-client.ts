import type { Duplex } from 'node:stream';
import { request, upgrade, type Dispatcher } from 'undici';
import { errorFromWire, UnavailableError } from '../errors.js';
import { childSignal } from '../lifecycle.js';
import { trustingAgent, type TlsTrust } from '../tls/pin.js';

export interface HttpClientOptions {
  /** Base URL of the server, e.g. `http://127.0.0.1:1111`. */
  url: string;
  /** Sent as `Authorization: Bearer <key>` when set. */
  key?: string;
  /** For an `https://` URL: trust a pinned or CA certificate rather than the system CAs. */
  tls?: TlsTrust;
  /** Headers added to every request. */
  headers?: Record<string, string>;
}

export interface RequestOptions {
  body?: unknown;
  query?: Record<string, string | number | boolean | undefined>;
  signal?: AbortSignal;
  headers?: Record<string, string>;
}

/**
 * The typed JSON-over-HTTP client every flynn-ts client is built on: JSON in and out, server
 * errors rebuilt into the same {@link FlynnError} classes, connection failures turned into a
 * retryable {@link UnavailableError} that names the server.
 */
export class HttpJsonClient {
  readonly url: string;
  private readonly dispatcher: Dispatcher;
  private readonly headers: Record<string, string>;

  constructor(options: HttpClientOptions) {
    this.url = options.url.replace(/\/+$/, '');
    this.dispatcher = trustingAgent(options.tls);
    this.headers = { ...options.headers };
    if (options.key !== undefined) this.headers.authorization = `Bearer ${options.key}`;
  }

  /** Send a request and parse the JSON answer (undefined for 204). Throws a FlynnError on 4xx/5xx. */
  async json<T>(method: Dispatcher.HttpMethod, path: string, options: RequestOptions = {}): Promise<T> {
    const res = await this.send(method, path, options);
    if (res.statusCode === 204) {
      await res.body.dump();
      return undefined as T;
    }
    return (await res.body.json()) as T;
  }

  /** Send a request and hand back the raw streaming response (for SSE, logs, blobs). Throws on 4xx/5xx. */
  async stream(method: Dispatcher.HttpMethod, path: string, options: RequestOptions & { rawBody?: Dispatcher.DispatchOptions['body'] } = {}): Promise<Dispatcher.ResponseData> {
    return this.send(method, path, options);
  }

  /**
   * Upgrade a `GET path` to `protocol` and hand back the raw connection (over the client's own
   * dispatcher, so a pinned TLS certificate applies too). A refused upgrade (4xx) loses its body in
   * undici: the caller probes `probePath` with a JSON GET to throw the server's own error, else an
   * UnavailableError.
   */
  async upgrade(path: string, protocol: string, options: { signal?: AbortSignal; probePath: string }): Promise<Duplex> {
    try {
      const { socket } = await upgrade(this.url + path, { dispatcher: this.dispatcher, method: 'GET', protocol, headers: this.headers, ...(options.signal ? { signal: options.signal } : {}) });
      return socket;
    } catch (err) {
      if (options.signal?.aborted) throw err;
      await this.json('GET', options.probePath, options.signal ? { signal: options.signal } : {});
      throw new UnavailableError('FLYNN_ERR_HTTP_UNREACHABLE', `cannot open a stream to ${this.url}${path}: ${(err as Error).message}`, { cause: err });
    }
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  private async send(method: Dispatcher.HttpMethod, path: string, options: RequestOptions & { rawBody?: Dispatcher.DispatchOptions['body'] }): Promise<Dispatcher.ResponseData> {
    const url = new URL(this.url + path);
    for (const [k, v] of Object.entries(options.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { ...this.headers, ...options.headers };
    let body: Dispatcher.DispatchOptions['body'] = options.rawBody;
    if (options.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(options.body);
    }
    // The request (and its response body) listens on a child of the caller's signal: callers share
    // long-lived signals across many concurrent requests, which must not pile listeners on them.
    const link = options.signal ? childSignal(options.signal) : undefined;
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, { method, headers, body, dispatcher: this.dispatcher, signal: link?.signal });
    } catch (err) {
      link?.release();
      if (options.signal?.aborted) throw err;
      throw new UnavailableError('FLYNN_ERR_HTTP_UNREACHABLE', `cannot reach ${this.url}: ${(err as Error).message}${untrusted(err) ? ' (trust its certificate by its pin or CA)' : ''}`, { cause: err });
    }
    if (link) {
      if (res.body.closed) link.release();
      else res.body.once('close', link.release);
    }
    if (res.statusCode >= 400) {
      const text = await res.body.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // not JSON: keep the text as detail
      }
      throw errorFromWire(res.statusCode, parsed);
    }
    return res;
  }
}

/** A TLS failure because the server's certificate does not chain to a trusted CA (e.g. self-signed). */
function untrusted(err: unknown): boolean {
  const code = (err as { code?: string }).code ?? (err as { cause?: { code?: string } }).cause?.code;
  return code === 'DEPTH_ZERO_SELF_SIGNED_CERT' || code === 'SELF_SIGNED_CERT_IN_CHAIN' || code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' || code === 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY';
}
