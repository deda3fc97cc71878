import type { Socket } from 'node:net';
import type { Server as TlsServer } from 'node:tls';

/** How long a new connection may stay silent before its first byte tells TLS from plain HTTP, in ms. */
const FIRST_BYTE_MS = 10_000;

/**
 * Make a TLS server answer a plain-HTTP request with a readable 400 JSON error (`message()`: what to
 * do instead) rather than a reset connection. The first byte of each connection tells them apart:
 * a TLS handshake starts with 0x16. Everything else goes to the server's own TLS handling unchanged
 * (a TLS socket takes over the bytes read ahead, node re-feeds a socket's buffered data).
 */
export function answerPlainHttp(server: TlsServer, message: () => string): void {
  const tlsListeners = server.listeners('connection') as ((socket: Socket) => void)[];
  server.removeAllListeners('connection');
  server.on('connection', (socket: Socket) => {
    socket.on('error', () => socket.destroy());
    socket.setTimeout(FIRST_BYTE_MS, () => socket.destroy());
    socket.once('data', (first: Buffer) => {
      socket.setTimeout(0);
      if (first[0] === 0x16) {
        socket.pause();
        socket.unshift(first);
        for (const listener of tlsListeners) listener.call(server, socket);
        return;
      }
      const body = JSON.stringify({ code: 'FLYNN_ERR_HTTPS_REQUIRED', message: message(), retryable: false });
      // Closed once written: the rest of the request is never read.
      socket.end(`HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`, () => socket.destroy());
    });
  });
}
