import type { Logger } from '../../common/logger.js';
import { RuntimeApiError, type RuntimeApi } from './runtime-api.js';

export const FAILED = /error|invalid|unknown|not found|no such|can't|cannot|require|only/i;

/** Names servers `b0`, `b1`... across every backend of one engine (a name is never reused). */
export class ServerNames {
  private next = 0;
  take(): string {
    return `b${this.next++}`;
  }
}

/**
 * The servers of one HAProxy backend, kept equal to a set of backend addresses with `add server` /
 * `del server`, and written back as `server` lines when the configuration is rewritten for a reload.
 */
export class LiveServers {
  /** backend address → its server name and the `add server` keywords it was added with. */
  private readonly live = new Map<string, { name: string; params: string }>();
  /** Servers in maintenance waiting for their connections to end before `del server`. */
  private readonly dying = new Set<string>();

  constructor(
    private readonly api: RuntimeApi,
    readonly backend: string,
    private readonly names: ServerNames,
    private readonly logger: Logger,
  ) {}

  get size(): number {
    return this.live.size;
  }

  /** Servers still draining before they can be deleted. */
  get draining(): boolean {
    return this.dying.size > 0;
  }

  /** The address of the live server `name` (undefined once retired). */
  addrOf(name: string): string | undefined {
    for (const [addr, server] of this.live) if (server.name === name) return addr;
    return undefined;
  }

  /** Add the addresses not served yet (with `params`), retire the others; true when a server was added. */
  async follow(addrs: ReadonlySet<string>, params: string): Promise<boolean> {
    let added = false;
    for (const addr of addrs) {
      if (this.live.has(addr)) continue;
      added = (await this.add(addr, params)) || added;
    }
    for (const addr of [...this.live.keys()]) if (!addrs.has(addr)) await this.retire(addr);
    return added;
  }

  /** Retire every server. */
  clear(): Promise<boolean> {
    return this.follow(new Set(), '');
  }

  /** Delete the retired servers whose connections have ended. */
  async reap(): Promise<void> {
    for (const name of [...this.dying]) {
      try {
        await this.api.run(`del server ${this.backend}/${name}`, { failure: FAILED });
        this.dying.delete(name);
      } catch (err) {
        if (!(err instanceof RuntimeApiError) || !/connections|still/i.test(err.message)) {
          this.logger.warn('haproxy engine: cannot delete server', { error: (err as Error).message });
          this.dying.delete(name);
        }
      }
    }
  }

  /** The `server` lines of a rewritten configuration: the live servers under their names (draining ones stay with the old worker). */
  configLines(): string[] {
    return [...this.live].map(([addr, { name, params }]) => `  server ${name} ${addr} ${params}`);
  }

  /** A reload happened: retired servers are not in the new worker. */
  reloaded(): void {
    this.dying.clear();
  }

  private async add(addr: string, params: string): Promise<boolean> {
    const name = this.names.take();
    try {
      await this.api.run(`add server ${this.backend}/${name} ${addr} ${params}`, { failure: FAILED });
      await this.api.run(`enable server ${this.backend}/${name}`, { failure: FAILED });
      if (/\bcheck\b/.test(params)) await this.api.run(`enable health ${this.backend}/${name}`, { failure: FAILED });
      this.live.set(addr, { name, params });
      return true;
    } catch (err) {
      this.logger.warn('haproxy engine: cannot add server', { backend: this.backend, addr, error: (err as Error).message });
      return false;
    }
  }

  /** Out of rotation now; deleted once its connections end (requests in flight finish). */
  private async retire(addr: string): Promise<void> {
    const server = this.live.get(addr);
    if (!server) return;
    this.live.delete(addr);
    await this.api.run(`set server ${this.backend}/${server.name} state maint`, { failure: FAILED }).catch((err: unknown) => this.logger.warn('haproxy engine: cannot drain server', { error: (err as Error).message }));
    this.dying.add(server.name);
    await this.reap();
  }
}
