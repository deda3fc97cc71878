import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../common/logger.js';
import type { Backend, BackendRegistry } from './backends.js';
import { RouterListenError } from './errors.js';
import { classify, type OutlierDetector } from './outlier.js';
import { timeoutError } from './timeout-error.js';
import { acceptProxied } from './proxy-protocol.js';
import type { TcpRoute } from './types.js';

/** One listening port of a TCP route: each accepted connection is piped to one of the service's backends. */
export class TcpListener {
  private readonly server: Server;
  private readonly conns = new Set<Socket>();
  private idleWaiters: (() => void)[] = [];

  constructor(
    readonly route: TcpRoute,
    private readonly host: string,
    private readonly backends: BackendRegistry,
    private readonly logger: Logger,
    private readonly maxAttempts: number,
    private readonly health: OutlierDetector,
    private readonly connectTimeoutMs: number,
    proxyProtocol = false,
  ) {
    this.server = createServer({ noDelay: true }, (socket) => (proxyProtocol ? acceptProxied(socket, (s) => this.accept(s)) : this.accept(socket)));
  }

  /** The port actually bound (the route's port). */
  get port(): number {
    const addr = this.server.address();
    return typeof addr === 'object' && addr !== null ? addr.port : this.route.port;
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(new RouterListenError(`cannot listen on ${this.host}:${this.route.port} for route ${this.route.id}: ${err.message}`, { cause: err }));
      this.server.once('error', onError);
      this.server.listen(this.route.port, this.host, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
  }

  /** Stop accepting (the port is free once this resolves); open connections are left to finish (or cut by `destroy()`). */
  stop(): Promise<void> {
    if (!this.server.listening) return Promise.resolve();
    return new Promise((resolve) => {
      this.server.close();
      setImmediate(resolve);
    });
  }

  get open(): number {
    return this.conns.size;
  }

  /** Resolves once no connection is open. */
  whenIdle(): Promise<void> {
    if (this.conns.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  destroy(): void {
    for (const socket of this.conns) socket.destroy();
  }

  private accept(client: Socket): void {
    this.conns.add(client);
    client.once('close', () => {
      this.conns.delete(client);
      if (this.conns.size === 0) for (const done of this.idleWaiters.splice(0)) done();
    });
    client.on('error', () => client.destroy());
    client.pause();
    const pool = this.backends.get(this.route.service);
    const tried = new Set<Backend>();
    const attempt = (backend: Backend | undefined): void => {
      if (!backend || client.destroyed) {
        if (!backend) this.logger.warn('no live backend for tcp route', { route: this.route.id, service: this.route.service });
        client.destroy();
        return;
      }
      tried.add(backend);
      backend.acquire();
      let connected = false;
      const upstream = connect({ host: backend.host, port: backend.port, noDelay: true });
      upstream.setTimeout(this.connectTimeoutMs, () => upstream.destroy(timeoutError('connect-timeout', this.connectTimeoutMs)));
      upstream.once('connect', () => {
        connected = true;
        upstream.setTimeout(0);
        this.health.success(backend);
        upstream.pipe(client);
        client.pipe(upstream);
        client.resume();
      });
      upstream.once('close', () => {
        backend.release();
        if (connected) client.destroy();
      });
      client.once('close', () => upstream.destroy());
      upstream.on('error', (err: NodeJS.ErrnoException) => {
        if (!connected) this.health.failure(backend, classify(err));
        if (!connected && tried.size < this.maxAttempts && pool) return attempt(pool.pick(tried));
        if (!connected) this.logger.warn('tcp backend failed', { route: this.route.id, addr: backend.addr, error: err.code });
        client.destroy();
      });
    };
    if (!pool || !pool.isReady) {
      void pool?.ready.then(() => attempt(pool.pick()));
      if (!pool) client.destroy();
      return;
    }
    attempt(pool.pick());
  }
}
