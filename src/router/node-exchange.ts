import { request, type Agent, type ClientRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Backend, ServicePool } from './backends.js';
import { Failover } from './failover.js';
import { clientHeaders, reply, replyRaw, type ProxyContext, type Timeouts } from './proxy-context.js';
import { timeoutError } from './outlier.js';
import type { HttpRoute } from './types.js';

/**
 * A node:http request to a backend with the router's timeouts: `connectMs` until the connection is
 * up, `idleMs` of silence while the request body goes out, `responseHeadersMs` from the end of the
 * request to the response head, `idleMs` of silence in the response body. A timeout destroys the
 * request with an error {@link classify} knows. `onConnected` runs once the connection is up (at
 * once for a pooled one): only then may the request body be sent.
 */
function backendRequest(req: IncomingMessage, backend: Backend, headers: string[], agent: Agent | false, t: Timeouts, onConnected: (preq: ClientRequest) => void): ClientRequest {
  const preq = request({ host: backend.host, port: backend.port, method: req.method, path: req.url, headers, agent, setHost: false });
  let timer: NodeJS.Timeout | undefined;
  const arm = (kind: 'connect-timeout' | 'headers-timeout', ms: number) => {
    clearTimeout(timer);
    timer = setTimeout(() => preq.destroy(timeoutError(kind, ms)), ms);
  };
  let connected = false;
  let finished = false;
  const headersPhase = () => {
    if (!connected || !finished) return;
    preq.setTimeout(0);
    arm('headers-timeout', t.responseHeadersMs);
  };
  preq.on('timeout', () => preq.destroy(timeoutError('idle-timeout', t.idleMs)));
  const up = () => {
    clearTimeout(timer);
    connected = true;
    preq.setTimeout(t.idleMs);
    onConnected(preq);
    headersPhase();
  };
  preq.once('socket', (socket: Socket) => {
    if (!socket.connecting) return up();
    arm('connect-timeout', t.connectMs);
    socket.once('connect', up);
  });
  preq.once('finish', () => {
    finished = true;
    headersPhase();
  });
  const stop = () => clearTimeout(timer);
  preq.once('response', () => {
    stop();
    preq.setTimeout(t.idleMs);
  });
  preq.once('upgrade', stop);
  preq.once('close', stop);
  return preq;
}

/**
 * A request with a body, through node:http with a keep-alive Agent per backend: the body is piped
 * only once the backend accepted the connection, so a refused one leaves it unread for the next
 * backend ({@link Failover}).
 */
export function proxyWithBody(ctx: ProxyContext, route: HttpRoute, pool: ServicePool, req: IncomingMessage, res: ServerResponse, headers: string[], t: Timeouts, first: { backend: Backend | undefined; pinned: boolean }): void {
  const https = (req.socket as { encrypted?: boolean }).encrypted === true;
  const h2 = req.httpVersionMajor === 2;
  let current: ClientRequest | undefined;
  res.once('close', () => {
    if (!res.writableFinished) current?.destroy();
  });
  const failover = new Failover(ctx, route, pool, false, send, (status, message) => reply(res, status, message));
  function send(backend: Backend, pinned: boolean): void {
    const release = backend.lease();
    const preq = backendRequest(req, backend, headers, backend.agent, t, (p) => req.pipe(p));
    current = preq;
    preq.once('response', (pres) => {
      failover.answered(backend);
      const headers = clientHeaders(ctx, route, backend, pinned, pres.rawHeaders, https, h2);
      // HTTP/2 has no reason phrase.
      if (h2) res.writeHead(pres.statusCode ?? 502, headers);
      else res.writeHead(pres.statusCode ?? 502, pres.statusMessage, headers);
      pres.pipe(res);
      pres.once('close', () => {
        release();
        // The backend went away mid-response: cut the client off so it cannot mistake a truncated body for a whole one.
        if (!pres.complete) res.destroy();
      });
    });
    preq.once('error', (err) => {
      release();
      if (res.headersSent || res.destroyed) res.destroy();
      else failover.failed(backend, err);
    });
  }
  failover.start(first.backend, first.pinned);
}

/**
 * An Upgrade (WebSocket or other): once the backend answers 101 the two sockets are piped raw and
 * closed together after `websocketIdleMs` of silence; a backend that declines gets its answer
 * relayed. Tries go through the same {@link Failover} as plain requests.
 */
export function proxyUpgrade(ctx: ProxyContext, route: HttpRoute, pool: ServicePool, req: IncomingMessage, socket: Duplex, head: Buffer, headers: string[], t: Timeouts): void {
  const failover = new Failover(ctx, route, pool, true, send, (status, message) => replyRaw(socket, status, message));
  function send(backend: Backend): void {
    if (socket.destroyed) return;
    const release = backend.lease();
    const preq = backendRequest(req, backend, headers, false, t, () => undefined);
    preq.end();
    const abort = () => preq.destroy();
    socket.once('close', abort);
    preq.once('upgrade', (pres, psocket, phead) => {
      failover.answered(backend);
      socket.off('close', abort);
      psocket.on('error', () => socket.destroy());
      psocket.once('close', () => {
        release();
        socket.destroy();
      });
      socket.once('close', () => psocket.destroy());
      const idle = () => {
        socket.destroy();
        psocket.destroy();
      };
      (socket as Socket).setTimeout?.(t.websocketIdleMs, idle);
      psocket.setTimeout(t.websocketIdleMs, idle);
      socket.write(rawHead(pres));
      if (phead.length > 0) socket.write(phead);
      if (head.length > 0) psocket.write(head);
      psocket.pipe(socket);
      socket.pipe(psocket);
    });
    preq.once('response', (pres) => {
      // The backend declined the upgrade: relay its answer and close.
      failover.answered(backend);
      socket.write(rawHead(pres));
      pres.pipe(socket);
      pres.once('close', release);
    });
    preq.once('error', (err) => {
      release();
      socket.off('close', abort);
      if (!socket.destroyed) failover.failed(backend, err);
    });
  }
  failover.start(pool.pick(), false);
}

function rawHead(pres: IncomingMessage): string {
  let head = `HTTP/1.1 ${pres.statusCode} ${pres.statusMessage}\r\n`;
  const raw = pres.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) head += `${raw[i]}: ${raw[i + 1]}\r\n`;
  return head + '\r\n';
}
