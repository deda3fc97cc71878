/**
 * Let's Encrypt's ACME test server (Debian's `pebble`) for tests: started on loopback with its own
 * self-signed HTTPS certificate, validating HTTP-01 on `httpPort` (the router's) and resolving
 * names through `dnsServer` (see dns.ts). Fast and deterministic.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeSelfSigned } from '../../src/common/tls/self-signed.js';
import { freePort } from '../../src/host/testing/jobs.js';

export interface TestPebble {
  directoryUrl: string;
  /** Pebble's own HTTPS certificate: what an ACME client must trust to talk to it. */
  ca: string;
  /** The root of the certificates it issues (made anew at each start). */
  root(): Promise<string>;
  close(): Promise<void>;
}

export { freePort };

function httpsGet(url: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, { agent: new Agent({ ca }) }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    })
      .on('error', reject)
      .end();
  });
}

export async function startPebble(options: { httpPort: number; dnsServer: string; host?: string }): Promise<TestPebble> {
  const host = options.host ?? '127.0.0.1';
  const dir = await mkdtemp(join(tmpdir(), 'flynn-pebble-'));
  const tls = await makeSelfSigned({ commonName: 'pebble', hosts: [host] });
  await writeFile(join(dir, 'cert.pem'), tls.cert);
  await writeFile(join(dir, 'key.pem'), tls.key, { mode: 0o600 });
  const [api, management] = [await freePort(host), await freePort(host)];
  const config = {
    pebble: {
      listenAddress: `${host}:${api}`,
      managementListenAddress: `${host}:${management}`,
      certificate: join(dir, 'cert.pem'),
      privateKey: join(dir, 'key.pem'),
      httpPort: options.httpPort,
      tlsPort: await freePort(host),
      ocspResponderURL: '',
      externalAccountBindingRequired: false,
    },
  };
  await writeFile(join(dir, 'config.json'), JSON.stringify(config));
  const child = spawn('pebble', ['-config', join(dir, 'config.json'), '-dnsserver', options.dnsServer], {
    // No sleeps, no rejected nonces, no reused authorizations (each order proves control anew).
    env: { ...process.env, PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (c: Buffer) => (output = (output + c.toString()).slice(-4000));
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const directoryUrl = `https://${host}:${api}/dir`;
  const end = Date.now() + 15_000;
  for (;;) {
    const ok = await httpsGet(directoryUrl, tls.cert).then((r) => r.status === 200, () => false);
    if (ok) break;
    if (Date.now() > end || child.exitCode !== null) {
      child.kill();
      throw new Error(`pebble did not start: ${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    directoryUrl,
    ca: tls.cert,
    root: async () => (await httpsGet(`https://${host}:${management}/roots/0`, tls.cert)).body,
    async close() {
      child.kill('SIGTERM');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
