import { ObjectNotFoundError } from '../controller/errors.js';
import { HostClient } from '../host/client.js';
import type { Scheduler } from '../scheduler/scheduler.js';

/** One {@link HostClient} per host agent, found by host id in the scheduler's view. */
export class HostClients {
  private readonly clients = new Map<string, HostClient>();

  constructor(
    private readonly scheduler: Pick<Scheduler, 'view'>,
    private readonly key: string,
  ) {}

  /** The client of a host the scheduler knows; throws a NotFoundError for another. */
  get(hostId: string): HostClient {
    const host = this.scheduler.view().hosts.find((h) => h.id === hostId);
    if (!host) throw new ObjectNotFoundError('host', hostId);
    const url = `http://${host.addr}`;
    let client = this.clients.get(url);
    if (!client) {
      client = new HostClient({ url, key: this.key });
      this.clients.set(url, client);
    }
    return client;
  }

  /** The address a host advertises its jobs' ports on (its API address without the port). */
  advertiseHost(hostId: string): string {
    const addr = this.scheduler.view().hosts.find((h) => h.id === hostId)?.addr ?? '';
    return addr.slice(0, addr.lastIndexOf(':'));
  }

  async close(): Promise<void> {
    const clients = [...this.clients.values()];
    this.clients.clear();
    await Promise.all(clients.map((c) => c.close().catch(() => {})));
  }
}
