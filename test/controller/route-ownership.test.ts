import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './harness.js';

describe('routes under the cluster domain and on the cluster\'s own ports', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ controller: { appDomain: 'flynn.local', reservedPorts: { 8080: "the router's HTTP port", 8081: "the controller's port" } } });
    await h.client.createApp({ name: 'shop' });
    await h.client.createApp({ name: 'blog' });
  });
  afterAll(() => h[Symbol.asyncDispose]());

  const refusal = (app: string, route: Record<string, unknown>) => h.raw('POST', `/apps/${app}/routes`, { body: JSON.stringify({ service: `${app}-web`, ...route }), headers: { 'content-type': 'application/json' } });

  it("gives <app>.<domain> and the names below it to that app only, and no app the domain's wildcard", async () => {
    // An app's own name, and the names below it, are its own.
    await h.client.createRoute('shop', { type: 'http', domain: 'shop.flynn.local', service: 'shop-web' });
    await h.client.createRoute('shop', { type: 'http', domain: 'api.shop.flynn.local', service: 'shop-web' });
    await h.client.createRoute('shop', { type: 'http', domain: '*.shop.flynn.local', service: 'shop-web' });
    // Another app's name, even one not created yet, is not.
    const taken = await refusal('blog', { type: 'http', domain: 'future.flynn.local' });
    expect(taken.status).toBe(400);
    expect(taken.body).toMatchObject({ code: 'FLYNN_ERR_CONTROLLER_INVALID_INPUT', detail: { field: 'domain' } });
    expect(JSON.stringify(taken.body)).toContain('future.flynn.local belongs to the app \\"future\\"');
    expect((await refusal('blog', { type: 'http', domain: 'x.shop.flynn.local' })).status).toBe(400);
    for (const domain of ['*.flynn.local', 'flynn.local']) expect((await refusal('blog', { type: 'http', domain })).status).toBe(400);
    // Domains of one's own are anyone's, as before.
    await h.client.createRoute('blog', { type: 'http', domain: 'blog.example.com', service: 'blog-web' });
    expect((await h.client.listRoutes('blog')).map((r) => (r.type === 'http' ? r.domain : r.port))).toEqual(['blog.example.com']);
  });

  it("refuses a tcp route on a port the cluster's own listeners hold, naming what holds it", async () => {
    const held = await refusal('shop', { type: 'tcp', port: 8080 });
    expect(held.status).toBe(400);
    expect(held.body).toMatchObject({ detail: { field: 'port' }, message: "port 8080 is the router's HTTP port: a tcp route needs a port of its own" });
    await h.client.createRoute('shop', { type: 'tcp', port: 5432, service: 'shop-db' });
  });
});
