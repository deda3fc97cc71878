/** The host agent's job state changes: numbered, the last ones kept for a resuming client (`Last-Event-Id`), fanned out live. */
import { AsyncQueue } from '../common/async-queue.js';
import { EventFanout } from './event-fanout.js';
import type { Job, JobEvent } from './types.js';

export class JobEventLog {
  private readonly fanout = new EventFanout<JobEvent>();
  private readonly backlog: JobEvent[] = [];
  private seq = 0;

  /** `backlogSize`: how many events are kept for replay. */
  constructor(private readonly backlogSize: number) {}

  publish(job: Job): void {
    const event: JobEvent = { seq: ++this.seq, job };
    this.backlog.push(event);
    if (this.backlog.length > this.backlogSize) this.backlog.shift();
    this.fanout.publish(event);
  }

  /** Job state changes, after replaying those with `seq > since` still in the backlog. */
  subscribe(options: { since?: number; signal?: AbortSignal } = {}): AsyncIterable<JobEvent> {
    const live = this.fanout.subscribe(options.signal);
    if (options.since === undefined) return live;
    const since = options.since;
    const replay = this.backlog.filter((e) => e.seq > since);
    const out = new AsyncQueue<JobEvent>(() => live.end());
    let last = since;
    for (const e of replay) {
      out.push(e);
      last = e.seq;
    }
    void (async () => {
      for await (const e of live) if (e.seq > last) out.push(e);
      out.end();
    })();
    return out;
  }

  /** Ends every subscription. */
  end(): void {
    this.fanout.end();
  }
}
