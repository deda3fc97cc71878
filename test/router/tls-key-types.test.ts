import { readFileSync } from 'node:fs';
import { connect as connectH2 } from 'node:http2';
import { connect as connectTls, type SecureVersion, type TLSSocket } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../../src/router/certificate.js';
import { readServerName } from '../../src/router/client-hello.js';
import { startBackend, ENGINES, rigFor, type Rig, type TestBackend } from './support.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/tls/${name}`, import.meta.url), 'utf8');

/** The CN of the certificate served to a TLS client (ALPN h2 or http/1.1) with this SNI name and highest version. */
function servedCn(port: number, servername: string | undefined, maxVersion: SecureVersion, alpn: string): Promise<{ cn: string; protocol: string | null; alpn: string | false | null }> {
  return new Promise((resolve, reject) => {
    const socket: TLSSocket = connectTls({ host: '127.0.0.1', port, ...(servername ? { servername } : {}), maxVersion, ALPNProtocols: [alpn], rejectUnauthorized: false }, () => {
      resolve({ cn: String(socket.getPeerCertificate().subject.CN), protocol: socket.getProtocol(), alpn: socket.alpnProtocol });
      socket.destroy();
    });
    socket.on('error', reject);
  });
}

describe('ClientHello server name', () => {
  it('reads SNI from a real hello, across split reads, and says when there is none', async () => {
    const { createServer } = await import('node:net');
    const grab = (servername: string | undefined) =>
      new Promise<Buffer>((resolve) => {
        const server = createServer((s) => s.once('data', (b: Buffer) => (resolve(b), s.destroy(), server.close())));
        server.listen(0, '127.0.0.1', () => {
          const port = (server.address() as { port: number }).port;
          connectTls({ host: '127.0.0.1', port, ...(servername ? { servername } : {}) }).on('error', () => undefined);
        });
      });
    const hello = await grab('a.x.test');
    expect(readServerName(hello)).toEqual({ done: true, servername: 'a.x.test' });
    expect(readServerName(hello.subarray(0, 3))).toEqual({ done: false });
    expect(readServerName(hello.subarray(0, hello.length - 1))).toEqual({ done: false });
    expect(readServerName(await grab(undefined))).toEqual({ done: true, servername: undefined });
    expect(readServerName(Buffer.from('GET / HTTP/1.1\r\n'))).toEqual({ done: true, servername: undefined });
  });
});

describe.each(ENGINES)('router (%s engine): route certificates of another key type than the default', (engine) => {
  const startRig = rigFor(engine);
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (cleanup.length > 0) await cleanup.pop()?.();
  });
  const track = <T extends Rig | TestBackend>(x: T): T => (cleanup.push(() => x.close()), x);

  it('serves an RSA route certificate beside an EC default one, on TLS 1.2 and 1.3, HTTP/1.1 and HTTP/2', async () => {
    const fallback = await selfSignedCertificate(['default.test', 'localhost']); // P-256
    const app = track(await startBackend('app'));
    const rig = track(
      await startRig(
        [
          { id: 'rsa', type: 'http', domain: 'rsa.test', service: 'app-web', tls: { cert: fixture('rsa.test.crt'), key: fixture('rsa.test.key') } },
          { id: 'ec', type: 'http', domain: 'a.test', service: 'app-web', tls: { cert: fixture('a.test.crt'), key: fixture('a.test.key') } },
        ],
        { https: { host: '127.0.0.1', port: 0 }, defaultCertificate: fallback },
      ),
    );
    await rig.register('app-web', app.addr);
    const port = rig.router.https?.port ?? 0;
    for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
      for (const alpn of ['http/1.1', 'h2']) {
        const at = `${version} ${alpn}`;
        expect(await servedCn(port, 'rsa.test', version, alpn), at).toEqual({ cn: 'rsa.test', protocol: version, alpn });
        expect((await servedCn(port, 'a.test', version, alpn)).cn, at).toBe('a.test');
        expect((await servedCn(port, 'other.test', version, alpn)).cn, at).toBe('default.test');
        expect((await servedCn(port, undefined, version, alpn)).cn, at).toBe('default.test');
      }
    }
    // And a whole HTTP/2 request over it, verified against the route's certificate.
    const session = connectH2(`https://127.0.0.1:${port}`, { ca: fixture('rsa.test.crt'), servername: 'rsa.test' });
    cleanup.push(async () => void session.close());
    const status = await new Promise<number>((resolve, reject) => {
      const stream = session.request({ ':path': '/', ':authority': 'rsa.test' });
      stream.on('response', (h) => resolve(Number(h[':status'])));
      stream.on('error', reject);
      stream.end();
    });
    expect(status).toBe(200);
  });
});
