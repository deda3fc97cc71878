import { connect as tlsConnect } from 'node:tls';
import { connect } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseProxyHeader } from '../../src/router/proxy-protocol.js';
import { ENGINES, rigFor, startBackend, type Rig, type TestBackend } from './support.js';

/** Send `head` then an HTTP request on one connection, read the answer to the end. */
function exchange(port: number, head: Buffer | string, host: string, tls = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(head);
      const request = `GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;
      if (!tls) return void socket.write(request);
      const secure = tlsConnect({ socket, servername: host, rejectUnauthorized: false }, () => secure.write(request));
      let out = '';
      secure.on('data', (c: Buffer) => (out += c.toString()));
      secure.on('end', () => resolve(out));
      secure.on('error', reject);
    });
    let out = '';
    if (!tls) socket.on('data', (c: Buffer) => (out += c.toString()));
    socket.on('end', () => tls || resolve(out));
    socket.on('error', reject);
  });
}

function v2Header(ip: number[], port: number): Buffer {
  const head = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x11, 0x00, 0x0c]);
  const body = Buffer.alloc(12);
  Buffer.from(ip).copy(body, 0);
  Buffer.from([127, 0, 0, 1]).copy(body, 4);
  body.writeUInt16BE(port, 8);
  body.writeUInt16BE(80, 10);
  return Buffer.concat([head, body]);
}

describe('PROXY protocol header parsing', () => {
  it('reads v1 and v2 headers, waits for more bytes, and refuses anything else', () => {
    expect(parseProxyHeader(Buffer.from('PROXY TCP4 203.0.113.7 10.0.0.1 5555 80\r\nGET'))).toEqual({ length: 41, client: { address: '203.0.113.7', port: 5555 } });
    expect(parseProxyHeader(v2Header([198, 51, 100, 9], 4444))).toEqual({ length: 28, client: { address: '198.51.100.9', port: 4444 } });
    expect(parseProxyHeader(Buffer.from('PROXY TCP4 1.2'))).toBeUndefined();
    expect(parseProxyHeader(Buffer.from('GET / HTTP/1.1\r\n'))).toBeInstanceOf(Error);
  });
});

describe.each(ENGINES)('router (%s engine): PROXY protocol', (engine) => {
  vi.setConfig({ testTimeout: 15_000, hookTimeout: 15_000 });
  const startRig = rigFor(engine);
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (cleanup.length > 0) await cleanup.pop()?.();
  });
  const track = <T extends Rig | TestBackend>(x: T): T => (cleanup.push(() => x.close()), x);

  it('takes the client address from a v1 or v2 header (on HTTPS too with haproxy), and closes a connection without one', async () => {
    const app = track(await startBackend('app'));
    const https = engine === 'haproxy' ? { https: { host: '127.0.0.1', port: 0 } } : {};
    const rig = track(await startRig([{ id: 'app', type: 'http', domain: 'app.test', service: 'app-web' }], { proxyProtocol: true, ...https }));
    await rig.register('app-web', app.addr);
    const seen = (answer: string) => JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)).headers['x-forwarded-for'];
    expect(seen(await exchange(rig.router.http.port, 'PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n', 'app.test'))).toBe('203.0.113.7');
    expect(seen(await exchange(rig.router.http.port, v2Header([198, 51, 100, 9], 4444), 'app.test'))).toBe('198.51.100.9');
    if (engine === 'haproxy') expect(seen(await exchange(rig.router.https?.port as number, 'PROXY TCP4 192.0.2.1 127.0.0.1 5555 443\r\n', 'app.test', true))).toBe('192.0.2.1');
    expect(await exchange(rig.router.http.port, '', 'app.test').catch(() => '')).not.toMatch(/^HTTP\/1.1 200/);
  });

  it.runIf(engine === 'node')('refuses an https listener with proxyProtocol on the node engine in one line', async () => {
    await expect(startRig([], { proxyProtocol: true, https: { host: '127.0.0.1', port: 0 } })).rejects.toThrow("proxyProtocol with an https listener needs engine 'haproxy'");
  });

  it('strips the header on a TCP route before the bytes reach the backend', async () => {
    const { createServer } = await import('node:net');
    const echo = createServer((s) => s.pipe(s));
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.2', resolve));
    cleanup.push(() => new Promise((resolve) => echo.close(() => resolve())));
    const { freePort } = await import('../../src/host/testing/jobs.js');
    const port = await freePort('127.0.0.1');
    const rig = track(await startRig([{ id: 'tcp', type: 'tcp', port, service: 'echo' }], { proxyProtocol: true }));
    await rig.register('echo', `127.0.0.2:${(echo.address() as { port: number }).port}`);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => socket.write('PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\nhello'));
      socket.once('data', (c: Buffer) => (socket.destroy(), resolve(c.toString())));
      socket.on('error', reject);
    });
    expect(answer).toBe('hello');
  });
});
