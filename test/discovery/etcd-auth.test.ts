/**
 * etcd with TLS client auth, and with users: discovery and the controller store work with the
 * credentials the manifest gives, and fail with one line without them. A private etcd per case,
 * with certificates the test makes.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdStore } from '../../src/controller/etcd-store.js';
import { EtcdDiscovery } from '../../src/discovery/etcd-backend.js';
import type { EtcdCredentials } from '../../src/discovery/etcd-credentials.js';
import { startEtcdServer, type EtcdServer } from '../../src/discovery/testing/etcd-server.js';
import { needEtcd } from '../support/services.js';

const exec = promisify(execFile);

/** A CA, and a server (SAN 127.0.0.1) and a client certificate it signed. */
async function makeCerts(dir: string): Promise<void> {
  const ssl = (...args: string[]) => exec('openssl', args, { cwd: dir });
  await ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=test-ca', '-keyout', 'ca.key', '-out', 'ca.crt');
  for (const [name, ext] of [['server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth'], ['client', 'extendedKeyUsage=clientAuth']] as const) {
    await writeFile(join(dir, `${name}.ext`), `${ext}\n`);
    await ssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.csr`);
    await ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-extfile', `${name}.ext`, '-out', `${name}.crt`);
  }
}

/** Within `ms`, or a rejection saying it hung. */
function within<T>(work: Promise<T>, ms: number): Promise<T> {
  return Promise.race([work, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms))]);
}

describe.runIf(await needEtcd('etcd TLS and auth (needs the etcd binary)'))('etcd with TLS client auth and with users', () => {
  let dir: string;
  let tlsEtcd: EtcdServer;
  let authEtcd: EtcdServer;
  let credentials: EtcdCredentials;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flynn-etcd-auth-'));
    await makeCerts(dir);
    tlsEtcd = await startEtcdServer({ tls: { certFile: join(dir, 'server.crt'), keyFile: join(dir, 'server.key'), caFile: join(dir, 'ca.crt') } });
    const read = (f: string) => readFile(join(dir, f), 'utf8');
    credentials = { ca: await read('ca.crt'), cert: await read('client.crt'), key: await read('client.key') };
    authEtcd = await startEtcdServer();
    const ctl = (...args: string[]) => exec('etcdctl', ['--endpoints', authEtcd.endpoint, ...args], { env: { ...process.env, ETCDCTL_API: '3' } });
    await ctl('user', 'add', 'root:rootpw');
    await ctl('user', 'grant-role', 'root', 'root');
    await ctl('user', 'add', 'flynn:s3cret');
    await ctl('role', 'add', 'flynn');
    await ctl('role', 'grant-permission', 'flynn', '--prefix=true', 'readwrite', '/flynn-ts');
    await ctl('user', 'grant-role', 'flynn', 'flynn');
    await ctl('auth', 'enable');
  }, 60_000);
  afterAll(async () => {
    await tlsEtcd?.close();
    await authEtcd?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('TLS with a client certificate: discovery registers and lists, the store writes and reads', async () => {
    const discovery = new EtcdDiscovery({ endpoints: [tlsEtcd.endpoint], prefix: '/flynn-ts', credentials });
    const store = new EtcdStore({ hosts: [tlsEtcd.endpoint], prefix: '/flynn-ts/controller/', credentials });
    try {
      const reg = await discovery.register({ service: 'flynn-host', addr: '127.0.0.1:1113' });
      expect((await discovery.instances('flynn-host')).map((i) => i.addr)).toEqual(['127.0.0.1:1113']);
      await reg.close();
      await store.createApp({ name: 'tls' });
      expect((await store.listApps()).map((a) => a.name)).toEqual(['tls']);
    } finally {
      await discovery.close();
      await store.close();
    }
  });

  it('TLS without the client certificate, or without the CA: the store fails with one line', async () => {
    const cases: Array<[EtcdCredentials | undefined, string]> = [
      [{ ca: credentials.ca! }, 'etcd refused the TLS connection (no client certificate it trusts): give a client certificate and key (cert, key)'],
      [undefined, "etcd: cannot verify etcd's TLS certificate: give the CA that signed it (ca)"],
    ];
    for (const [partial, line] of cases) {
      const store = new EtcdStore({ hosts: [tlsEtcd.endpoint], prefix: '/flynn-ts/controller/', ...(partial ? { credentials: partial } : {}) });
      try {
        const err = (await within(store.listApps(), 20_000).catch((e: unknown) => e)) as Error;
        expect(err).toBeInstanceOf(Error);
        expect(err.message).toBe(line);
        expect(err.message).not.toContain('\n');
      } finally {
        await store.close();
      }
    }
  }, 60_000);

  it('users: with the username and password discovery and the store work; without, one line', async () => {
    const auth: EtcdCredentials = { username: 'flynn', password: 's3cret' };
    const discovery = new EtcdDiscovery({ endpoints: [authEtcd.endpoint], prefix: '/flynn-ts', credentials: auth });
    const store = new EtcdStore({ hosts: [authEtcd.endpoint], prefix: '/flynn-ts/controller/', credentials: auth });
    try {
      const reg = await discovery.register({ service: 'flynn-host', addr: '127.0.0.1:1113' });
      expect((await discovery.instances('flynn-host')).length).toBe(1);
      await reg.close();
      await store.createApp({ name: 'users' });
      expect((await store.listApps()).map((a) => a.name)).toEqual(['users']);
    } finally {
      await discovery.close();
      await store.close();
    }
    for (const wrong of [undefined, { username: 'flynn', password: 'nope' }]) {
      const anonymous = new EtcdStore({ hosts: [authEtcd.endpoint], prefix: '/flynn-ts/controller/', ...(wrong ? { credentials: wrong } : {}) });
      try {
        const err = (await within(anonymous.listApps(), 20_000).catch((e: unknown) => e)) as Error;
        expect(err.message).toMatch(/^etcd refused the user \(etcdserver: (user name is empty|authentication failed, invalid user ID or password)\): check the username and password$/);
        expect(err.message).not.toContain('\n');
      } finally {
        await anonymous.close();
      }
    }
  }, 60_000);
});
