import { randomUUID } from 'node:crypto';
import { Etcd3 } from 'etcd3';
import { afterAll, describe, expect, it } from 'vitest';
import { CONTROLLER_DEFAULTS, EtcdStore } from '../../src/controller/index.js';
import { etcdEndpoints, needEtcd } from '../support/services.js';
import { startHarness, type Harness } from './harness.js';

const MiB = 1024 * 1024;

describe.runIf(await needEtcd('controller limits on etcd'))('API limits that match the etcd store', () => {
  const prefix = `/flynn-ts-test/controller-limits/${randomUUID()}/`;
  let h: Harness | undefined;
  afterAll(async () => {
    await h?.[Symbol.asyncDispose]();
    const client = new Etcd3({ hosts: etcdEndpoints });
    await client.delete().prefix(prefix);
    client.close();
  });

  it('answers a ~1 MiB env body with a 413 naming the limit, 100 times in a row, and keeps answering', async () => {
    h = await startHarness({ store: new EtcdStore({ hosts: etcdEndpoints, prefix }) });
    await h.client.createApp({ name: 'big' });
    const body = JSON.stringify({ set: { BIG: 'x'.repeat(MiB - 100) } });
    const first = await h.raw('PATCH', '/apps/big/env', { body, headers: { 'content-type': 'application/json' } });
    expect(first.status).toBe(413);
    expect(first.body.message).toBe(`request body is too large: the limit is ${CONTROLLER_DEFAULTS.bodyLimit} bytes`);
    for (let i = 0; i < 100; i++) {
      const r = await h.raw('PATCH', '/apps/big/env', { body, headers: { 'content-type': 'application/json' } });
      expect(r.status).toBe(413);
      // Every request in between is answered at once (no 503 window).
      expect((await h.raw('GET', '/apps/big')).status).toBe(200);
    }
    const change = await h.client.setEnv('big', { SMALL: 'ok' });
    expect(change.release?.env).toEqual({ SMALL: 'ok' });
    // The app's env is its current release's: current once the deployment is done.
    if (change.deployment) await h.client.waitForDeployment('big', change.deployment.id);
  });

  it('refuses a value or an env over its limit with a 413 naming it, under the body limit', async () => {
    const value = await h!.raw('PATCH', '/apps/big/env', { body: JSON.stringify({ set: { V: 'y'.repeat(CONTROLLER_DEFAULTS.maxEnvValueBytes + 1) } }), headers: { 'content-type': 'application/json' } });
    expect(value.status).toBe(413);
    expect(value.body).toMatchObject({ code: 'FLYNN_ERR_CONTROLLER_TOO_LARGE', message: `the value of V is ${CONTROLLER_DEFAULTS.maxEnvValueBytes + 1} bytes, over the limit of ${CONTROLLER_DEFAULTS.maxEnvValueBytes} bytes`, detail: { field: 'set.V' } });
    const set: Record<string, string> = {};
    for (let i = 0; i < 5; i++) set[`V${i}`] = 'z'.repeat(60 * 1024);
    const env = await h!.raw('PATCH', '/apps/big/env', { body: JSON.stringify({ set }), headers: { 'content-type': 'application/json' } });
    expect(env.status).toBe(413);
    expect(env.body.message).toMatch(new RegExp(`^the env \\(names and values\\) is \\d+ bytes, over the limit of ${CONTROLLER_DEFAULTS.maxEnvBytes} bytes$`));
    const release = await h!.raw('POST', '/apps/big/releases', { body: JSON.stringify({ env: set }), headers: { 'content-type': 'application/json' } });
    expect(release.status).toBe(413);
    expect((await h!.client.getEnv('big'))).toEqual({ SMALL: 'ok' });
  });

  it('refuses a store write over what etcd commits before sending it, and the store keeps working', async () => {
    const store = h!.store;
    const app = await store.getApp('big');
    await expect(store.createRelease(app.id, { artifactId: null, env: { HUGE: 'h'.repeat(1.2 * MiB) }, processes: {} })).rejects.toMatchObject({ code: 'FLYNN_ERR_CONTROLLER_TOO_LARGE', status: 413 });
    // A client stuck on the refused write would hang here (the test's timeout), not answer late.
    expect((await store.listApps()).map((a) => a.name)).toEqual(['big']);
  });
});
