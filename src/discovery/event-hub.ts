import { randomBytes } from 'node:crypto';
import { AsyncQueue } from '../common/async-queue.js';
import type { Discovery, ServiceWatch } from './discovery.js';
import { DiscoveryUnavailableError } from './errors.js';
import { ServiceView } from './service-view.js';
import type { ServiceEvent } from './types.js';

/** A service event with its stream id, `<epoch>-<seq>`. */
export interface NumberedEvent {
  id: string;
  event: ServiceEvent;
}

export interface EventHubOptions {
  /** How many recent events per service are kept for clients resuming with `Last-Event-Id`. */
  historySize: number;
  /** How long a service's backend watch outlives its last subscriber, in ms (so reconnects can resume). */
  lingerMs: number;
}

/**
 * The discovery server's fan-out: one backend watch per watched service, shared by every
 * subscriber, with events numbered so a client that reconnects with `Last-Event-Id` gets exactly
 * what it missed. A client whose id is unknown (another epoch: the feed was restarted) or too old
 * gets a fresh `current` instead.
 */
export class EventHub {
  private readonly feeds = new Map<string, Feed>();

  constructor(
    private readonly discovery: Discovery,
    private readonly options: EventHubOptions,
  ) {}

  /** Events for `service`: either the ones after `lastEventId`, or `current` first; then live ones. */
  async subscribe(service: string, lastEventId?: string): Promise<AsyncQueue<NumberedEvent>> {
    for (;;) {
      let feed = this.feeds.get(service);
      if (!feed) {
        const created = new Feed(this.discovery, service, this.options, () => {
          if (this.feeds.get(service) === created) this.feeds.delete(service);
        });
        this.feeds.set(service, created);
        feed = created;
      }
      await feed.ready;
      // A feed that lingered out while we waited is gone: start a new one.
      if (!feed.isClosed) return feed.subscribe(lastEventId);
    }
  }

  close(): void {
    for (const feed of [...this.feeds.values()]) feed.close();
    this.feeds.clear();
  }
}

class Feed {
  readonly ready: Promise<void>;
  private readonly epoch = randomBytes(4).toString('hex');
  private seq = 0;
  private readonly history: NumberedEvent[] = [];
  private readonly subscribers = new Set<AsyncQueue<NumberedEvent>>();
  private readonly view: ServiceView;
  private readonly watch: ServiceWatch;
  private linger: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    discovery: Discovery,
    private readonly service: string,
    private readonly options: EventHubOptions,
    private readonly onClose: () => void,
  ) {
    this.view = new ServiceView(service);
    this.watch = discovery.watch(service);
    let markReady!: () => void;
    let fail!: (err: unknown) => void;
    this.ready = new Promise<void>((resolve, reject) => {
      markReady = resolve;
      fail = reject;
    });
    this.ready.catch(() => {}); // a subscriber awaiting it sees the failure
    void this.pump(markReady, fail);
  }

  /** Feed the backend watch into the view and the subscribers. */
  private async pump(markReady: () => void, fail: (err: unknown) => void): Promise<void> {
    try {
      for await (const event of this.watch) {
        if (event.type === 'current') {
          this.view.reset(event.instances);
          markReady();
          continue;
        }
        if (event.type === 'up' || event.type === 'update') this.view.put(event.instance);
        else if (event.type === 'down') this.view.remove(event.instance.id);
        this.publish(event);
      }
      fail(new DiscoveryUnavailableError(`the backend watch of ${this.service} ended`)); // no-op once ready
      this.close();
    } catch (err) {
      fail(err);
      this.close(err);
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  subscribe(lastEventId: string | undefined): AsyncQueue<NumberedEvent> {
    clearTimeout(this.linger);
    const queue: AsyncQueue<NumberedEvent> = new AsyncQueue(() => {
      this.subscribers.delete(queue);
      if (this.subscribers.size === 0 && !this.closed) {
        this.linger = setTimeout(() => this.close(), this.options.lingerMs);
        this.linger.unref();
      }
    });
    const missed = this.since(lastEventId);
    if (missed) {
      for (const e of missed) queue.push(e);
    } else {
      const instances = this.view.instances;
      queue.push({ id: this.id(this.seq), event: { type: 'current', service: this.service, instances, leader: instances[0] ?? null } });
    }
    this.subscribers.add(queue);
    return queue;
  }

  close(err?: unknown): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.linger);
    this.watch.close();
    for (const queue of [...this.subscribers]) queue.end(err);
    this.subscribers.clear();
    this.onClose();
  }

  /** The events after `lastEventId`, or undefined when they cannot be replayed. */
  private since(lastEventId: string | undefined): NumberedEvent[] | undefined {
    if (lastEventId === undefined) return undefined;
    const match = /^([0-9a-f]+)-(\d+)$/.exec(lastEventId);
    if (!match || match[1] !== this.epoch) return undefined;
    const last = Number(match[2]);
    const oldest = this.seq - this.history.length; // seq of the event just before the oldest kept
    if (last < oldest || last > this.seq) return undefined;
    return this.history.slice(last - oldest);
  }

  private publish(event: ServiceEvent): void {
    const numbered = { id: this.id(++this.seq), event };
    this.history.push(numbered);
    if (this.history.length > this.options.historySize) this.history.shift();
    for (const queue of this.subscribers) queue.push(numbered);
  }

  private id(seq: number): string {
    return `${this.epoch}-${seq}`;
  }
}
