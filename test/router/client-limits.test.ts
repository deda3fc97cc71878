import { connect as connectH2 } from 'node:http2';
import { connect as connectTcp } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as connectTls } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../../src/router/certificate.js';
import { raw, ENGINES, perTest } from './support.js';

describe.each(ENGINES)('router (%s engine): client limits', (engine) => {
  const { later, oneRoute } = perTest(engine);
  const rig = (extra: Parameters<typeof oneRoute>[1] = {}) => oneRoute('app.test', extra);

  it('answers a request head over the limit with 431 (HTTP/1.1), on HTTP/2 from the router itself', async () => {
    const fallback = await selfSignedCertificate(['localhost']);
    const { rig: r } = await rig({ https: { host: '127.0.0.1', port: 0 }, defaultCertificate: fallback });
    const big = 'a'.repeat(17 * 1024);
    const h1 = await raw(r.router.http.port, `GET / HTTP/1.1\r\nHost: app.test\r\nX-Big: ${big}\r\nConnection: close\r\n\r\n`);
    // HAProxy's parser refuses a head that does not fit its buffer with its own 400.
    expect(h1).toMatch(engine === 'node' ? /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n[\s\S]*431 Request Header Fields Too Large: request head larger than/ : /^HTTP\/1\.1 400 /);
    if (engine === 'haproxy') return; // its HTTP/2 layer closes the session (COMPRESSION_ERROR) on a header block over its buffer
    // A client that sends header blocks over 64 KiB (curl's and node's HTTP/2 clients refuse to by default, so the router never sees those).
    const session = connectH2(`https://127.0.0.1:${r.router.https?.port}`, { ca: fallback.cert, servername: 'localhost', checkServerIdentity: () => undefined, maxSendHeaderBlockLength: 1 << 20 });
    later(async () => void session.close());
    for (const kib of [17, 70]) {
      const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const stream = session.request({ ':path': '/', ':authority': 'app.test', 'x-big': 'a'.repeat(kib * 1024) });
        let status = 0;
        let body = '';
        stream.on('response', (h) => (status = Number(h[':status'])));
        stream.on('data', (c: Buffer) => (body += c.toString()));
        stream.on('end', () => resolve({ status, body }));
        stream.on('error', reject);
        stream.end();
      });
      expect(answer.status, `${kib} KiB`).toBe(431);
      expect(answer.body).toMatch(/^431 Request Header Fields Too Large: request headers larger than \d+ bytes\n$/);
    }
  });

  it('answers 408 and closes when a request head takes longer than requestHeadersTimeoutMs (slowloris), over HTTP and HTTPS', async () => {
    const fallback = await selfSignedCertificate(['localhost']);
    const { rig: r, backend } = await rig({ https: { host: '127.0.0.1', port: 0 }, defaultCertificate: fallback, requestHeadersTimeoutMs: 1000 });
    const opens: [string, () => Duplex][] = [
      ['http', () => connectTcp(r.router.http.port, '127.0.0.1')],
      ['https', () => connectTls({ host: '127.0.0.1', port: r.router.https?.port ?? 0, servername: 'app.test', rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] })],
    ];
    for (const [what, open] of opens) {
      let start = 0;
      const answer = await slowHead(open, 200, (at) => (start = at));
      expect(answer, what).toMatch(/^HTTP\/1\.1 408 Request Time-?out\r\n/i); // HAProxy says "Time-out"
      expect(Date.now() - start, what).toBeGreaterThanOrEqual(1000);
    }
    expect(backend.hits).toBe(0);
    // A client that opens the HTTPS port and says nothing (no ClientHello, or half of one) is cut too.
    // (HAProxy 2.6 waits for 'timeout client', idleTimeoutMs, in a TLS handshake: 'timeout client-hs' came in 2.8.)
    if (engine === 'haproxy') return;
    for (const first of ['', '\x16\x03\x01']) {
      const start = Date.now();
      const silent = connectTcp(r.router.https?.port ?? 0, '127.0.0.1', () => silent.write(first));
      silent.on('error', () => undefined);
      await new Promise((resolve) => silent.on('close', resolve));
      expect(Date.now() - start).toBeGreaterThanOrEqual(1000);
    }
  });
});

/** Open a connection (plain or TLS), send a request head one line at a time every `everyMs`, and return what comes back once the router closes it. */
async function slowHead(open: () => Duplex, everyMs: number, started: (at: number) => void): Promise<string> {
  const socket = open();
  let out = '';
  let closed = false;
  socket.on('data', (c: Buffer) => (out += c.toString()));
  const done = new Promise<void>((resolve) => socket.on('close', () => ((closed = true), resolve())));
  socket.on('error', () => undefined);
  started(Date.now());
  socket.write('GET / HTTP/1.1\r\nHost: app.test\r\n');
  // Bounded: 200 lines; the router is expected to give up long before.
  // Writing stops at the first answer byte: a write after the router closed would get a reset that can discard the answer.
  for (let i = 0; i < 200 && !closed && out === ''; i++) {
    await new Promise((r) => setTimeout(r, everyMs));
    if (!closed && out === '') socket.write(`X-Slow-${i}: x\r\n`);
  }
  await done;
  return out;
}
