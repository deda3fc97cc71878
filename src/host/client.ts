/** Typed client of the host agent's HTTP API; the scheduler and tools use it. */
import { HttpJsonClient } from '../common/http/json-client.js';
import type { TlsTrust } from '../common/tls/pin.js';
import { parseSse } from '../common/http/sse.js';
import { errorFromStream } from '../common/http/stream-error.js';
import { ATTACH_PROTOCOL, FrameChannel } from '../common/http/frames.js';
import type { HostStatus, Job, JobEvent, JobSpec, LogLine, Volume } from './types.js';

/** A job spec as sent: `env`, `ports`, `limits` and `meta` may be left out. */
export type JobRequest = Omit<JobSpec, 'env' | 'ports' | 'limits' | 'meta'> & Partial<Pick<JobSpec, 'env' | 'ports' | 'limits' | 'meta'>>;

export interface HostClientOptions {
  /** The agent's API, e.g. `http://127.0.0.2:41234`. */
  url: string;
  /** The host key the agent was started with (sent as `Authorization: Bearer <key>`). */
  key?: string;
  /** For an `https://` URL: trust a pinned or CA certificate rather than the system CAs. */
  tls?: TlsTrust;
}

export class HostClient {
  private readonly http: HttpJsonClient;

  /**
   * `url` is the agent's API, e.g. `http://127.0.0.2:41234`; `key` the host key it was started
   * with (sent as `Authorization: Bearer <key>`). A bare URL only reaches an agent started with
   * `insecureNoAuth`.
   */
  constructor(options: HostClientOptions | string) {
    this.http = new HttpJsonClient(typeof options === 'string' ? { url: options } : options);
  }

  get url(): string {
    return this.http.url;
  }

  /** Start a job; resolves once it is `up` (or `failed`, with `error`). */
  createJob(spec: JobRequest, options: { signal?: AbortSignal } = {}): Promise<Job> {
    return this.http.json<Job>('POST', '/jobs', { body: spec, ...options });
  }

  listJobs(options: { signal?: AbortSignal } = {}): Promise<Job[]> {
    return this.http.json<Job[]>('GET', '/jobs', options);
  }

  /** The ended jobs the agent keeps (state, exit status, end time), oldest end first; their last lines come from `logs`. */
  listEndedJobs(options: { signal?: AbortSignal } = {}): Promise<Job[]> {
    return this.http.json<Job[]>('GET', '/jobs', { query: { ended: 1 }, ...options });
  }

  getJob(id: string, options: { signal?: AbortSignal } = {}): Promise<Job> {
    return this.http.json<Job>('GET', `/jobs/${encodeURIComponent(id)}`, options);
  }

  /** SIGTERM, then SIGKILL after `graceMs` (agent default when absent); resolves with the ended job. */
  stopJob(id: string, options: { graceMs?: number; signal?: AbortSignal } = {}): Promise<Job> {
    const { graceMs, ...rest } = options;
    return this.http.json<Job>('DELETE', `/jobs/${encodeURIComponent(id)}`, { query: { grace_ms: graceMs }, ...rest });
  }

  signalJob(id: string, signal: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    return this.http.json<void>('POST', `/jobs/${encodeURIComponent(id)}/signal`, { body: { signal }, ...options });
  }

  status(options: { signal?: AbortSignal } = {}): Promise<HostStatus> {
    return this.http.json<HostStatus>('GET', '/status', options);
  }

  /** Create a volume on the host (409 when the name is taken). */
  createVolume(name: string, options: { signal?: AbortSignal } = {}): Promise<Volume> {
    return this.http.json<Volume>('POST', '/volumes', { body: { name }, ...options });
  }

  listVolumes(options: { signal?: AbortSignal } = {}): Promise<Volume[]> {
    return this.http.json<Volume[]>('GET', '/volumes', options);
  }

  getVolume(name: string, options: { signal?: AbortSignal } = {}): Promise<Volume> {
    return this.http.json<Volume>('GET', `/volumes/${encodeURIComponent(name)}`, options);
  }

  /** Delete a volume and its data (409 while a live job mounts it). */
  deleteVolume(name: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    return this.http.json<void>('DELETE', `/volumes/${encodeURIComponent(name)}`, options);
  }

  /** A job's output lines; with `follow`, until the job ends or `signal` aborts. */
  async *logs(id: string, options: { follow?: boolean; lines?: number; signal?: AbortSignal } = {}): AsyncGenerator<LogLine> {
    const res = await this.http.stream('GET', `/jobs/${encodeURIComponent(id)}/logs`, {
      query: { follow: options.follow ? 1 : undefined, lines: options.lines },
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const decoder = new TextDecoder();
    let pending = '';
    try {
      for await (const chunk of res.body) {
        pending += decoder.decode(chunk as Uint8Array, { stream: true });
        let nl: number;
        while ((nl = pending.indexOf('\n')) !== -1) {
          const raw = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          if (raw === '') continue;
          const parsed = JSON.parse(raw) as LogLine | { error: unknown };
          if ('error' in parsed) throw errorFromStream(parsed.error);
          yield parsed;
        }
      }
    } catch (err) {
      if (options.signal?.aborted) return;
      throw err;
    } finally {
      res.body.destroy();
    }
  }

  /**
   * Attach to a job started with `stdin` (once): frames of common/http/frames.ts — send `stdin`,
   * `eof`, `resize`, `signal`; read `job`, `stdout`, `stderr`, then `exit` or `error`.
   */
  async attach(id: string, options: { signal?: AbortSignal } = {}): Promise<FrameChannel> {
    const path = `/jobs/${encodeURIComponent(id)}`;
    return new FrameChannel(await this.http.upgrade(`${path}/attach`, ATTACH_PROTOCOL, { probePath: path, ...options }));
  }

  /** Job state changes as they happen; `since` resumes after that event `seq`. */
  async *events(options: { since?: number; signal?: AbortSignal } = {}): AsyncGenerator<JobEvent> {
    yield* await this.openEvents(options);
  }

  /** {@link events}, once the agent answered: it is subscribed then, so no later change is missed. */
  async openEvents(options: { since?: number; signal?: AbortSignal } = {}): Promise<AsyncGenerator<JobEvent>> {
    const res = await this.http.stream('GET', '/events', {
      ...(options.since === undefined ? {} : { headers: { 'last-event-id': String(options.since) } }),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    return (async function* () {
      try {
        for await (const event of parseSse(res.body)) {
          if (event.event === 'error') throw errorFromStream(event.data);
          if (event.event === 'job') yield JSON.parse(event.data) as JobEvent;
        }
      } catch (err) {
        if (options.signal?.aborted) return;
        throw err;
      } finally {
        res.body.destroy();
      }
    })();
  }

  close(): Promise<void> {
    return this.http.close();
  }
}
