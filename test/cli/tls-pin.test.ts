import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certPin } from '../../src/common/tls/pin.js';

const MAIN = resolve('src/cli/main.ts');
const TSX = pathToFileURL(resolve('node_modules/tsx/dist/loader.mjs')).href;

const run = (args: string[], env: Record<string, string>) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
    execFile(process.execPath, ['--import', TSX, MAIN, ...args], { env: { ...process.env, ...env }, encoding: 'utf8' }, (err, stdout, stderr) =>
      done({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });

describe('flynn server-add -p (TLS pin)', () => {
  let dir: string;
  let server: Server;
  let url: string;
  let pin: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flynn-pin-'));
    await new Promise<void>((ok, ko) =>
      execFile('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=controller', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], (err) => (err ? ko(err) : ok())),
    );
    const cert = await readFile(join(dir, 'cert.pem'));
    pin = certPin(new X509Certificate(cert).raw);
    server = createServer({ key: await readFile(join(dir, 'key.pem')), cert }, (req, res) => {
      const ok = req.headers.authorization === 'Bearer k';
      res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
      res.end(ok ? '[]' : '{"code":"FLYNN_ERR_CONTROLLER_UNAUTHORIZED","message":"wrong cluster key","retryable":false}');
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.3', ok));
    url = `https://127.0.0.3:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((ok) => server?.close(ok));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('talks to a self-signed controller whose certificate matches the pin and refuses one that does not', async () => {
    const good = { FLYNNRC: join(dir, 'good.json') };
    expect((await run(['server-add', '-p', pin, 'pinned', url, 'k'], good)).code).toBe(0);
    expect(await run(['apps', '--json'], good)).toMatchObject({ code: 0, stdout: '[]\n' });
    const bad = { FLYNNRC: join(dir, 'bad.json') };
    const wrongPin = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=';
    const badAdd = await run(['server-add', '-p', wrongPin, 'pinned', url, 'k'], bad);
    expect(badAdd.code).toBe(1);
    expect(badAdd.stderr).toMatch(/^flynn: cannot reach a controller at https:\/\/127\.0\.0\.3:\d+: TLS pin mismatch.*--no-verify adds it anyway\)\n$/);
    expect((await run(['server-add', '--no-verify', '-p', wrongPin, 'pinned', url, 'k'], bad)).code).toBe(0);
    const refused = await run(['apps'], bad);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^flynn: cannot reach https:\/\/127\.0\.0\.3:\d+: TLS pin mismatch/);
    const unpinned = { FLYNNRC: join(dir, 'none.json') };
    expect((await run(['server-add', 'plain', url, 'k'], unpinned)).code).toBe(1);
    expect((await run(['server-add', '--no-verify', 'plain', url, 'k'], unpinned)).code).toBe(0);
    expect((await run(['apps'], unpinned)).code).toBe(1);
  });
});
