import { createServer } from 'node:net';
import type { Logger } from '../../common/logger.js';
import type { BackendRegistry } from '../backends.js';
import type { RouterConfig } from '../options.js';
import type { TcpRoute } from '../types.js';
import type { RuntimeApi } from './runtime-api.js';
import { LiveServers, type ServerNames } from './servers.js';

/** Whether `host:port` can be bound now (a port held by another process would make the whole reload fail). */
function bindable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/** HAProxy's longest timeout (2^31 ms is refused): a TCP connection has no idle limit, as on the node engine. */
const NO_IDLE_LIMIT = '24d';

const addr = (host: string, port: number) => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);

/**
 * The TCP routes on HAProxy: one `listen tcp<port>` section per route port. A port is declared in
 * the configuration (a new or removed one takes a reload); its servers follow the route's service
 * through the Runtime API, so a backend change or a route moved to another service on the same
 * port does not.
 */
export class TcpPorts {
  /** Ports in the running configuration, with the route each serves and its servers. */
  private readonly declared = new Map<number, { route: TcpRoute; servers: LiveServers }>();
  /** The routes wanted now, by port (ports that cannot be bound left out). */
  private wanted = new Map<number, TcpRoute>();
  private readonly refused = new Set<string>();

  constructor(
    private readonly api: RuntimeApi,
    private readonly config: RouterConfig,
    private readonly backends: BackendRegistry,
    private readonly names: ServerNames,
    private readonly logger: Logger,
  ) {}

  /** Take the TCP routes in force. A new port that another process holds is left out with an error, as the node engine does. */
  async plan(routes: TcpRoute[]): Promise<void> {
    const wanted = new Map<number, TcpRoute>();
    for (const route of routes) {
      const key = `${route.id}:${route.port}`;
      if (!this.declared.has(route.port) && !(await bindable(this.config.tcpHost, route.port))) {
        if (!this.refused.has(key)) this.logger.error('tcp route cannot listen', { route: route.id, error: `${addr(this.config.tcpHost, route.port)} is in use` });
        this.refused.add(key);
        continue;
      }
      this.refused.delete(key);
      wanted.set(route.port, route);
    }
    this.wanted = wanted;
  }

  /** The set of ports differs from the running configuration's. */
  get needsReload(): boolean {
    return this.wanted.size !== this.declared.size || [...this.wanted.keys()].some((port) => !this.declared.has(port));
  }

  get draining(): boolean {
    return [...this.declared.values()].some((p) => p.servers.draining);
  }

  /**
   * The TCP part of a rewritten configuration: a `defaults` for TCP, then one `listen` section per
   * wanted port with its live servers, bound when `listening`.
   */
  configText(listening: boolean): string {
    const c = this.config;
    const sections = [...this.wanted.keys()].map((port) =>
      [
        `listen tcp${port}`,
        ...(listening ? [`  bind ${addr(c.tcpHost, port)}${c.proxyProtocol ? ' accept-proxy' : ''}`] : []),
        // Fewest open connections (the node engine: power of two choices on them); a refused or timed-out connect goes to another server.
        '  balance leastconn',
        `  retries ${c.maxAttempts - 1}`,
        '  option redispatch 1',
        ...(this.declared.get(port)?.servers.configLines() ?? []),
      ].join('\n'),
    );
    if (sections.length === 0) return '';
    return `defaults tcp
  mode tcp
  load-server-state-from-file global
  timeout connect ${c.timeouts.connectMs}
  timeout client ${NO_IDLE_LIMIT}
  timeout server ${NO_IDLE_LIMIT}

${sections.join('\n\n')}
`;
  }

  /** The configuration written with {@link configText} is the one running now. */
  reloaded(): void {
    for (const [port, entry] of this.declared) {
      if (!this.wanted.has(port)) this.declared.delete(port);
      else entry.servers.reloaded();
    }
    for (const [port, route] of this.wanted) {
      const entry = this.declared.get(port);
      if (entry) entry.route = route;
      else this.declared.set(port, { route, servers: new LiveServers(this.api, `tcp${port}`, this.names, this.logger) });
    }
  }

  /** A reload failed: leave out the ports it would have added. */
  abandon(): void {
    for (const [port, route] of this.wanted) {
      if (this.declared.has(port)) continue;
      this.wanted.delete(port);
      this.refused.add(`${route.id}:${route.port}`);
    }
  }

  /** Bring each declared port's servers to its route's live backends (a removed port's stay until the reload). */
  async sync(): Promise<void> {
    const c = this.config;
    // Passive ejection after ejectAfterFailures failed connects in a row; a connect every baseEjectionMs puts a server back.
    const params = `check inter ${c.baseEjectionMs} downinter ${c.baseEjectionMs} fall 1 rise 1 observe layer4 error-limit ${c.ejectAfterFailures} on-error mark-down`;
    for (const [port, entry] of this.declared) {
      const route = this.wanted.get(port) ?? entry.route;
      entry.route = route;
      const live = this.backends.get(route.service)?.backends ?? [];
      await entry.servers.follow(new Set(live.map((b) => b.addr)), params);
      await entry.servers.reap();
    }
  }
}
