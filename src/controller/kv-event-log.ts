/** The controller's event log over a {@link Kv}: each mutation one transaction that appends its events, and the watch of them. */
import { AsyncQueue } from '../common/async-queue.js';
import type { Kv, KvTxn } from './kv.js';
import type { WatchOptions } from './store.js';
import type { ControllerEvent, EventObject, EventOp } from './types.js';
import { now, pad } from './kv-records.js';

/** The key of the last event's sequence number. */
export const SEQ = 'seq';
const eventKey = (seq: number) => `events/${pad(seq, 16)}`;

export type Emit = (object: EventObject, op: EventOp, appId: string | null, objectId: string, data: unknown) => void;

export class KvEventLog {
  private readonly queues = new Set<AsyncQueue<ControllerEvent>>();

  constructor(
    private readonly kv: Kv,
    private readonly eventRetention: number,
  ) {}

  /** One transaction: read the event sequence, run `fn`, append its events, commit. */
  async mutate<T>(fn: (tx: KvTxn, emit: Emit) => Promise<T>, onEvents?: (events: ControllerEvent[]) => void): Promise<T> {
    let events: ControllerEvent[] = [];
    const result = await this.kv.txn(async (tx) => {
      events = [];
      const seq = Number((await tx.get(SEQ)) ?? '0');
      const emit: Emit = (object, op, appId, objectId, data) => {
        events.push({ id: String(seq + events.length + 1), object, op, appId, objectId, data, createdAt: now() });
      };
      const out = await fn(tx, emit);
      for (const e of events) {
        tx.put(eventKey(Number(e.id)), JSON.stringify(e));
        if (Number(e.id) > this.eventRetention) tx.delete(eventKey(Number(e.id) - this.eventRetention));
      }
      if (events.length > 0) tx.put(SEQ, String(seq + events.length));
      return out;
    });
    onEvents?.(events);
    return result;
  }

  async listEvents(options: { afterId?: string; appId?: string; limit?: number } = {}): Promise<ControllerEvent[]> {
    const after = Number(options.afterId ?? '0');
    const events = (await this.kv.list('events/')).map(([, v]) => JSON.parse(v) as ControllerEvent).filter((e) => Number(e.id) > after && (options.appId === undefined || e.appId === options.appId));
    return options.limit === undefined ? events : events.slice(0, options.limit);
  }

  watchEvents(options: WatchOptions & { afterId?: string } = {}): AsyncIterable<ControllerEvent> {
    let unwatch: (() => Promise<void>) | undefined;
    let stopped = false;
    const queue: AsyncQueue<ControllerEvent> = new AsyncQueue(() => {
      stopped = true;
      this.queues.delete(queue);
      options.signal?.removeEventListener('abort', onAbort);
      void unwatch?.().catch(() => undefined);
    });
    const onAbort = () => queue.end();
    if (options.signal?.aborted) queue.end();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    this.queues.add(queue);
    let last = Number.NaN;
    let pending: ControllerEvent[] | undefined = [];
    const deliver = (e: ControllerEvent) => {
      if (Number(e.id) <= last) return;
      last = Number(e.id);
      queue.push(e);
    };
    void (async () => {
      unwatch = await this.kv.watch('events/', (_k, v) => {
        const e = JSON.parse(v) as ControllerEvent;
        if (pending) pending.push(e);
        else deliver(e);
      });
      if (stopped) return void (await unwatch());
      if (options.afterId === undefined) {
        last = Number((await this.kv.get(SEQ)) ?? '0');
      } else {
        last = Number(options.afterId) || 0;
        for (const e of await this.listEvents({ afterId: String(last) })) deliver(e);
      }
      const buffered = pending ?? [];
      pending = undefined;
      for (const e of buffered.sort((a, b) => Number(a.id) - Number(b.id))) deliver(e);
    })().catch((err: unknown) => queue.end(err));
    return queue;
  }

  /** The events of one kind of object, mapped to a change. */
  watchObjects<T>(options: WatchOptions & { afterEventId?: string }, object: EventObject, map: (e: ControllerEvent) => T): AsyncIterable<T> {
    const events = this.watchEvents({ ...(options.signal ? { signal: options.signal } : {}), ...(options.afterEventId !== undefined ? { afterId: options.afterEventId } : {}) });
    return (async function* () {
      for await (const e of events) if (e.object === object) yield map(e);
    })();
  }

  /** Ends every watch. */
  endWatches(): void {
    for (const q of [...this.queues]) q.end();
  }
}
