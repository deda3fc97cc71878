import { createServer as createHttpServer, maxHeaderSize, type Server } from 'node:http';
import type { Http2SecureServer } from 'node:http2';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer } from 'node:net';
import type { Duplex } from 'node:stream';
import type { SecureContext } from 'node:tls';
import { nodeAccessLog } from './access-log.js';
import type { Engine, EngineListen, RouterCore } from './engine.js';
import type { RouterMetrics } from './metrics.js';
import { RouterListenError } from './errors.js';
import { FastFront } from './h1-front.js';
import { createFastHandler, createRequestHandler, createUpgradeHandler, type RequestObserver } from './http-proxy.js';
import { InFlight, replyRaw, type ProxyContext } from './proxy-context.js';
import { HttpsListener, type Http1Settings } from './https-listener.js';
import type { ListenAddress } from './options.js';
import { acceptProxied } from './proxy-protocol.js';
import { secureContext } from './sni.js';
import { StickySigner } from './sticky.js';

function listen(server: Server | Http2SecureServer | NetServer, addr: ListenAddress, what: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const onError = (err: Error) => reject(new RouterListenError(`cannot listen for ${what} on ${addr.host}:${addr.port}: ${err.message}`, { cause: err }));
    server.once('error', onError);
    server.listen(addr.port, addr.host, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** The answer to a request node's parser refused: 431 for a head over node's limit, 408 for one not read in time, else 400. */
function clientErrorAnswer(err: NodeJS.ErrnoException): [number, string] {
  if (err.code === 'HPE_HEADER_OVERFLOW') return [431, `request head larger than ${maxHeaderSize} bytes`];
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') return [408, 'request head not received in time'];
  return [400, 'bad request'];
}

/**
 * node's HTTP/1 server timeouts: a request head must arrive within `requestHeadersTimeoutMs` (node
 * answers 408 through `clientError`), checked every second (node's default, 30 s, let a slowloris
 * client stay up to 30 s longer); node's 5 min for a whole request stays, unless the head's is longer.
 */
function http1Settings(config: NodePlaneCore['config']): Http1Settings {
  const head = config.requestHeadersTimeoutMs;
  return { keepAliveTimeout: config.keepAliveTimeoutMs, headersTimeout: head, requestTimeout: Math.max(head, 300_000), connectionsCheckingInterval: Math.min(1000, head) };
}

/** What the node data plane reads: the router's state in this process, or a worker's mirror of it. */
export type NodePlaneCore = Pick<RouterCore, 'config' | 'logger' | 'table' | 'health'> & {
  backends: ProxyContext['backends'];
  /** Counts each answer when the router serves metrics. */
  metrics?: RouterMetrics;
  /** The route certificate for an SNI name. */
  certificate(name: string): SecureContext | undefined;
};

/** The `node` engine: a fast plain-HTTP listener (h1-front.ts) and node:http / node:http2 servers in this process, proxying on the router's own backend connections and through undici. */
export async function startNodeEngine(core: NodePlaneCore, where: EngineListen): Promise<Engine> {
  const { config, logger, table, backends, health, certificate } = core;
  const inFlight = new InFlight();
  let httpPort = where.http.port;
  let httpsPort = where.https?.addr.port ?? 0;
  const ctx: ProxyContext = { table, backends, signer: new StickySigner(config.stickyKey), logger, inFlight, health, httpsPort: () => (where.https ? httpsPort : undefined), ...config };

  const http1 = http1Settings(config);
  const httpServer = createHttpServer(http1);
  httpServer.on('request', createRequestHandler(ctx, 'http', () => httpPort));
  httpServer.on('upgrade', createUpgradeHandler(ctx, 'http', () => httpPort));
  const https = where.https
    ? new HttpsListener({
        defaultCertificate: where.https.defaultCertificate,
        defaultContext: secureContext(where.https.defaultCertificate),
        certificate,
        http1,
        handshakeTimeoutMs: config.requestHeadersTimeoutMs,
        logger,
        onRequest: createRequestHandler(ctx, 'https', () => httpsPort),
        onUpgrade: createUpgradeHandler(ctx, 'https', () => httpsPort),
      })
    : undefined;
  const servers = [httpServer, https?.server].filter((s) => s !== undefined);
  const observers: RequestObserver[] = [];
  if (config.accessLog) observers.push(nodeAccessLog(config.accessLog, table) as RequestObserver);
  if (core.metrics) observers.push(core.metrics.observer(table) as RequestObserver);
  for (const observe of observers) for (const server of servers) server.prependListener('request', observe as never);
  // Plain HTTP arrives on the fast listener, which hands node's server what it does not serve itself.
  const fast = new FastFront(httpServer, createFastHandler(ctx, () => httpPort, observers), config.keepAliveTimeoutMs);
  // Unparseable requests get an answer (when the socket can still take it), never a hang.
  for (const server of servers) {
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      if (!socket.writable) return void socket.destroy();
      const [status, message] = clientErrorAnswer(err);
      replyRaw(socket, status, message);
    });
  }
  // With proxyProtocol a plain TCP listener reads the PROXY header, then hands the connection to the HTTP server
  // (HTTPS with it is refused on this engine: options.ts).
  const fronts = new Map<Server | Http2SecureServer, NetServer>();
  fronts.set(httpServer, config.proxyProtocol ? createNetServer((socket) => acceptProxied(socket, (c) => fast.accept(c))) : fast.server);
  if (https) fronts.set(https.server, https.front);
  // node starts a server's request-head and request timers when it listens; behind a front it never does by itself.
  fronts.get(httpServer)?.once('listening', () => httpServer.emit('listening'));
  const listener = (server: Server | Http2SecureServer) => fronts.get(server) ?? server;
  let stopped: Promise<void>[] = [];
  const stopAccepting = async () => {
    inFlight.draining = true;
    stopped = [...servers, ...fronts.values()].map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    httpServer.closeIdleConnections();
    fast.closeIdle();
    https?.closeIdle();
  };
  try {
    httpPort = await listen(listener(httpServer), where.http, 'http');
    if (https && where.https) httpsPort = await listen(listener(https.server), where.https.addr, 'https');
  } catch (err) {
    for (const server of [...servers, ...fronts.values()]) server.close();
    throw err;
  }
  return {
    httpPort,
    httpsPort: where.https ? httpsPort : undefined,
    inFlight: () => inFlight.count + inFlight.sockets.size,
    stopAccepting,
    whenIdle: () => inFlight.whenIdle(),
    async close() {
      if (stopped.length === 0) await stopAccepting();
      httpServer.closeAllConnections();
      fast.closeAll();
      https?.closeAll();
      for (const socket of inFlight.sockets) socket.destroy();
      await Promise.all(stopped);
    },
  };
}
