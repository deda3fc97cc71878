import { connect as connectH2 } from 'node:http2';
import { afterEach, describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../../src/router/certificate.js';
import { raw, startBackend, ENGINES, rigFor, type Rig, type TestBackend } from './support.js';

describe.each(ENGINES)('router (%s engine): client limits', (engine) => {
  const startRig = rigFor(engine);
  const cleanup: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (cleanup.length > 0) await cleanup.pop()?.();
  });
  const track = <T extends Rig | TestBackend>(x: T): T => (cleanup.push(() => x.close()), x);

  async function rig(extra: Parameters<typeof startRig>[1] = {}): Promise<{ rig: Rig; backend: TestBackend }> {
    const backend = track(await startBackend('app'));
    const r = track(await startRig([{ id: 'app', type: 'http', domain: 'app.test', service: 'app-web' }], extra));
    await r.register('app-web', backend.addr);
    return { rig: r, backend };
  }

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
    cleanup.push(async () => void session.close());
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
});
