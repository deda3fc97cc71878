import { describe, expect, it } from 'vitest';
import { sleep } from '../../src/common/lifecycle.js';
import { ControllerClient, ControllerErrorCodes, MemoryKv, MemoryStore, ProcessTypeNotFoundError, startController, type Deployer, type Job, type JobRunner } from '../../src/controller/index.js';
import { KEY_ED25519, KEY_ED25519_FP } from '../../src/controller/testing/store-suite.js';
import { changed, startHarness, KEY } from './harness.js';

const json = { 'content-type': 'application/json' };

async function deployed(h: Awaited<ReturnType<typeof startHarness>>, name: string) {
  await h.client.createApp({ name });
  const artifact = await h.client.createArtifact({ url: 'http://127.0.0.1:9/slug.tgz', processes: { web: { cmd: ['node', 'web.js'] }, worker: { cmd: ['node', 'w.js'] } } });
  const release = await h.client.createRelease(name, { artifactId: artifact.id, env: { GREETING: 'hi' } });
  const deployment = await h.client.deploy(name, release.id);
  await h.client.waitForDeployment(name, deployment.id);
  return { artifact, release };
}

describe('controller API', () => {
  it('answers 401 JSON without a key or with a wrong one, and accepts Bearer or Basic', async () => {
    await using h = await startHarness();
    const none = await h.raw('GET', '/apps', { headers: { authorization: '' } });
    expect(none.status).toBe(401);
    expect(none.body.code).toBe('FLYNN_ERR_CONTROLLER_UNAUTHORIZED');
    expect((await h.raw('GET', '/apps', { headers: { authorization: 'Bearer nope' } })).status).toBe(401);
    expect((await h.raw('GET', '/apps', { headers: { authorization: 'Basic ' + Buffer.from(':nope').toString('base64') } })).status).toBe(401);
    expect((await h.raw('GET', '/apps', { headers: { authorization: 'Basic ' + Buffer.from(`user:${KEY}`).toString('base64') } })).status).toBe(200);
    expect((await h.raw('GET', '/apps', { headers: { authorization: 'Token x' } })).status).toBe(401);
  });

  it('creates, lists, gets, updates and deletes apps; names are DNS labels and unique', async () => {
    await using h = await startHarness();
    const app = await h.client.createApp({ name: 'blog', meta: { owner: 'ops' } });
    expect(app.name).toBe('blog');
    expect((await h.client.listApps()).map((a) => a.name)).toEqual(['blog']);
    expect(await h.client.getApp(app.id)).toEqual(app);
    expect((await h.client.updateApp('blog', { meta: { owner: 'dev' }, strategy: 'one-by-one' })).meta).toEqual({ owner: 'dev' });
    await expect(h.client.createApp({ name: 'blog' })).rejects.toMatchObject({ status: 409, code: 'FLYNN_ERR_CONTROLLER_NAME_TAKEN' });
    for (const bad of ['Blog', '-x', 'a_b', 'x'.repeat(64), '']) {
      const res = await h.raw('POST', '/apps', { body: JSON.stringify({ name: bad }), headers: json });
      expect(res.status, bad).toBe(400);
      expect(res.body.detail?.field).toBe('name');
    }
    await h.client.deleteApp('blog');
    await expect(h.client.getApp('blog')).rejects.toMatchObject({ status: 404, code: 'FLYNN_ERR_CONTROLLER_APP_NOT_FOUND' });
  });

  it('answers malformed JSON, wrong types, unknown fields and unknown apps with 4xx JSON naming the field', async () => {
    await using h = await startHarness();
    const malformed = await h.raw('POST', '/apps', { body: '{"name": ', headers: json });
    expect(malformed).toMatchObject({ status: 400, body: { code: 'FLYNN_ERR_MALFORMED_JSON' } });
    const wrongType = await h.raw('POST', '/apps', { body: JSON.stringify({ name: 42 }), headers: json });
    expect(wrongType).toMatchObject({ status: 400, body: { detail: { field: 'name' } } });
    const missing = await h.raw('POST', '/apps', { body: '{}', headers: json });
    expect(missing).toMatchObject({ status: 400, body: { detail: { field: 'name' } } });
    const unknown = await h.raw('POST', '/apps', { body: JSON.stringify({ name: 'ok', colour: 'red' }), headers: json });
    expect(unknown).toMatchObject({ status: 400, body: { message: 'invalid body: colour is not a known field', detail: { field: 'colour' } } });
    const notObject = await h.raw('POST', '/apps', { body: '[1]', headers: json });
    expect(notObject).toMatchObject({ status: 400, body: { detail: { field: 'body' } } });
    const badStrategy = await h.raw('POST', '/apps', { body: JSON.stringify({ name: 'ok', strategy: 'yolo' }), headers: json });
    expect(badStrategy).toMatchObject({ status: 400, body: { detail: { field: 'strategy' } } });
    const badQuery = await h.raw('GET', '/events?last_event_id=x');
    expect(badQuery).toMatchObject({ status: 400, body: { detail: { field: 'last_event_id' } } });
    await h.client.createApp({ name: 'x' });
    const scaleBad = await h.raw('PUT', '/apps/x/scale', { body: JSON.stringify({ processes: { web: 'many' } }), headers: json });
    expect(scaleBad).toMatchObject({ status: 400, body: { detail: { field: 'processes.web' } } });
    const routeBad = await h.raw('POST', '/apps/x/routes', { body: JSON.stringify({ type: 'tcp', service: 'x-web', port: 70000 }), headers: json });
    expect(routeBad).toMatchObject({ status: 400, body: { detail: { field: 'port' } } });
    const envBad = await h.raw('PATCH', '/apps/x/env', { body: JSON.stringify({ set: { '1BAD': 'v' } }), headers: json });
    expect(envBad).toMatchObject({ status: 400, body: { detail: { field: 'set' } } });
    const runBad = await h.raw('POST', '/apps/x/jobs', { body: JSON.stringify({ cmd: [] }), headers: json });
    expect(runBad).toMatchObject({ status: 400, body: { detail: { field: 'cmd' } } });
    for (const path of ['/apps/nope', '/apps/nope/releases', '/apps/nope/jobs', '/apps/nope/routes', '/apps/nope/env', '/apps/nope/log']) {
      expect((await h.raw('GET', path)).body.code, path).toBe('FLYNN_ERR_CONTROLLER_APP_NOT_FOUND');
    }
    expect((await h.raw('GET', '/no/such/endpoint')).status).toBe(404);
  });

  it('keeps artifacts and numbered immutable releases, and knows the current release', async () => {
    await using h = await startHarness();
    const { artifact, release } = await deployed(h, 'shop');
    expect(await h.client.getArtifact(artifact.id)).toEqual(artifact);
    expect((await h.client.listArtifacts()).map((a) => a.id)).toContain(artifact.id);
    expect(release).toMatchObject({ version: 1, artifactId: artifact.id, env: { GREETING: 'hi' }, processes: artifact.processes });
    expect(await h.client.currentRelease('shop')).toEqual(release);
    expect(await h.client.getRelease('shop', 'v1')).toEqual(release);
    const bad = await h.raw('POST', '/artifacts', { body: JSON.stringify({ url: 'not a url' }), headers: json });
    expect(bad).toMatchObject({ status: 400, body: { detail: { field: 'url' } } });
    expect((await h.raw('PUT', `/apps/shop/releases/${release.id}`, { body: '{}', headers: json })).status).toBe(404);
  });

  it("keeps a slug artifact's sha256 (64 lowercase hex), refuses another format and a docker artifact's; one without stays valid", async () => {
    await using h = await startHarness();
    const sha256 = 'ab'.repeat(32);
    const kept = await h.client.createArtifact({ url: 'http://127.0.0.1:9/slug.tgz', sha256 });
    expect(await h.client.getArtifact(kept.id)).toMatchObject({ type: 'slug', sha256 });
    expect(await h.client.createArtifact({ url: 'http://127.0.0.1:9/slug.tgz' })).not.toHaveProperty('sha256');
    for (const bad of ['AB'.repeat(32), 'ab'.repeat(31), `sha256:${sha256}`]) {
      const res = await h.raw('POST', '/artifacts', { body: JSON.stringify({ url: 'http://127.0.0.1:9/slug.tgz', sha256: bad }), headers: json });
      expect(res, bad).toMatchObject({ status: 400, body: { message: 'invalid body: sha256 must match pattern "^[0-9a-f]{64}$"', detail: { field: 'sha256' } } });
    }
    const docker = await h.raw('POST', '/artifacts', { body: JSON.stringify({ type: 'docker', url: `sha256:${sha256}`, sha256 }), headers: json });
    expect(docker).toMatchObject({ status: 400, body: { detail: { field: 'sha256' } } });
    // A docker artifact is pinned by its image id alone.
    expect(await h.client.createArtifact({ type: 'docker', url: `sha256:${sha256}` })).toMatchObject({ type: 'docker', url: `sha256:${sha256}` });
  });

  it('deploys the first release at web=1, scales it, and env changes make new deployed releases', async () => {
    await using h = await startHarness();
    const { release } = await deployed(h, 'api');
    expect((await h.client.listJobs('api')).map((j) => `${j.type}:${j.state}`)).toEqual(['web:up']);
    expect((await h.client.scale('api', { web: 3, worker: 2 })).processes).toEqual({ web: 3, worker: 2 });
    expect(await h.client.getFormation('api', release.id)).toMatchObject({ processes: { web: 3, worker: 2 } });
    await expect(h.client.scale('api', { clock: 1 })).rejects.toMatchObject({ detail: { field: 'processes.clock' } });
    // A scale quota per process type (CONTROLLER_DEFAULTS.maxScale, 100).
    await expect(h.client.scale('api', { web: 101 })).rejects.toMatchObject({ status: 400, message: 'web=101 is over the limit of 100 jobs per process type', detail: { field: 'processes.web' } });
    const change = changed(await h.client.setEnv('api', { DATABASE_URL: 'postgres://db' }));
    expect(change.release.version).toBe(2);
    await h.client.waitForDeployment('api', change.deployment.id);
    expect(await h.client.getEnv('api')).toEqual({ GREETING: 'hi', DATABASE_URL: 'postgres://db' });
    const jobs = await h.client.listJobs('api');
    expect(jobs.filter((j) => j.releaseId === change.release.id)).toHaveLength(5);
    expect(jobs.filter((j) => j.releaseId === release.id)).toHaveLength(0);
    const unset = changed(await h.client.unsetEnv('api', ['GREETING']));
    await h.client.waitForDeployment('api', unset.deployment.id);
    expect(await h.client.getEnv('api')).toEqual({ DATABASE_URL: 'postgres://db' });
    expect((await h.client.listReleases('api')).map((r) => r.version)).toEqual([1, 2, 3]);
    expect((await h.client.listFormations('api')).map((f) => f.releaseId)).toEqual([unset.release.id]);
    expect((await h.client.listDeployments('api')).every((d) => d.status === 'complete')).toBe(true);
  });

  it('an env change that changes nothing makes no release and no deployment, and names the keys', async () => {
    await using h = await startHarness();
    const { release } = await deployed(h, 'noop');
    const missing = await h.client.unsetEnv('noop', ['NOPE']);
    expect(missing).toEqual({ release: expect.objectContaining({ id: release.id, version: 1 }), deployment: null, unchanged: ['NOPE'] });
    const same = await h.client.setEnv('noop', { GREETING: 'hi' });
    expect(same).toMatchObject({ deployment: null, unchanged: ['GREETING'] });
    expect((await h.client.listReleases('noop')).map((r) => r.version)).toEqual([1]);
    expect(await h.client.listDeployments('noop')).toHaveLength(1);
    const partly = changed(await h.client.updateEnv('noop', { set: { GREETING: 'hi', A: '1' }, unset: ['NOPE'] }));
    expect(partly).toMatchObject({ release: { version: 2, env: { GREETING: 'hi', A: '1' } }, unchanged: ['GREETING', 'NOPE'] });
    await h.client.createApp({ name: 'bare' });
    expect(await h.client.unsetEnv('bare', ['X'])).toEqual({ release: null, deployment: null, unchanged: ['X'] });
    const raw = await h.raw('PATCH', '/apps/noop/env', { body: JSON.stringify({ unset: ['NOPE'] }), headers: json });
    expect(raw.status).toBe(200);
  });

  it('a rollback names the release it rolled back to; a malformed route id is named as given', async () => {
    await using h = await startHarness();
    await deployed(h, 'rbt');
    await h.client.waitForDeployment('rbt', changed(await h.client.setEnv('rbt', { V: '2' })).deployment.id);
    const back = await h.client.rollback('rbt');
    expect(back.target).toMatchObject({ version: 1 });
    expect(back.release).toMatchObject({ version: 3 });
    await expect(h.client.deleteRoute('rbt', 'bogus')).rejects.toMatchObject({ status: 404, message: 'no route "bogus"' });
  });

  it('writes a formation for any release and reports status with the git host', async () => {
    await using h = await startHarness();
    const { release } = await deployed(h, 'form');
    expect(await h.client.status()).toEqual({ status: 'ok', gitHost: '127.0.0.2:2222' });
    const v2 = await h.client.createRelease('form', { artifactId: release.artifactId });
    expect(await h.client.getFormation('form', 'v2')).toMatchObject({ releaseId: v2.id, processes: {} });
    expect((await h.client.putFormation('form', v2.id, { worker: 2 })).processes).toEqual({ worker: 2 });
    expect((await h.client.listAllFormations()).length).toBe(2);
    await expect(h.client.putFormation('form', 'v9', { web: 1 })).rejects.toMatchObject({ status: 404 });
    const noRelease = await h.client.createApp({ name: 'empty' });
    await expect(h.client.scale(noRelease.name, { web: 1 })).rejects.toMatchObject({ status: 400, detail: { field: 'app' } });
    await expect(h.client.currentRelease('empty')).rejects.toMatchObject({ status: 404 });
  });

  it('rolls back to the previous or a named release as a new release', async () => {
    await using h = await startHarness();
    await deployed(h, 'rb');
    const v2 = changed(await h.client.setEnv('rb', { V: '2' }));
    await h.client.waitForDeployment('rb', v2.deployment.id);
    const back = await h.client.rollback('rb');
    await h.client.waitForDeployment('rb', back.deployment.id);
    expect(back.release).toMatchObject({ version: 3, env: { GREETING: 'hi' } });
    const again = await h.client.rollback('rb', 'v2');
    await h.client.waitForDeployment('rb', again.deployment.id);
    expect((await h.client.currentRelease('rb')).env).toEqual({ GREETING: 'hi', V: '2' });
    await expect(h.client.rollback('rb', 'v99')).rejects.toMatchObject({ detail: { field: 'release' } });
  });

  it('rolls back past a release that failed to deploy, to the last one that served, unless one is named', async () => {
    await using h = await startHarness({ crashWhen: (r) => r.env.BROKEN === '1' });
    await deployed(h, 'past');
    await h.client.waitForDeployment('past', changed(await h.client.setEnv('past', { V: '2' })).deployment.id);
    // v3 fails to deploy (v2 keeps serving), v4 deploys: the release before v4 that served is v2.
    await expect(h.client.waitForDeployment('past', changed(await h.client.setEnv('past', { BROKEN: '1' })).deployment.id)).rejects.toThrow(/crashed/);
    await h.client.waitForDeployment('past', changed(await h.client.setEnv('past', { V: '4' })).deployment.id);
    expect((await h.client.currentRelease('past')).version).toBe(4);
    const back = await h.client.rollback('past');
    expect(back.target).toMatchObject({ version: 2 });
    await h.client.waitForDeployment('past', back.deployment.id);
    expect((await h.client.currentRelease('past')).env).toEqual({ GREETING: 'hi', V: '2' });
    // Named, a failed release is deployed again (and fails again).
    expect((await h.client.rollback('past', 'v3')).target).toMatchObject({ version: 3 });
  });

  it('a controller that closes aborts a deployment in flight at once, while its API still drains: the old release stays', async () => {
    // Brings the new release up in 500 ms, unless aborted.
    const deployer: Deployer = {
      async deploy(plan, o) {
        await o.writeFormations([{ releaseId: plan.to.releaseId, processes: plan.to.processes }]);
        await sleep(500, o.signal);
      },
    };
    await using h = await startHarness({ deployer });
    const { release } = await deployed(h, 'closing');
    const next = changed(await h.client.setEnv('closing', { V: '2' }));
    // The harness's client is still connected: the API's close waits for it (seconds), and the
    // deployment must not finish meanwhile (its caller was told the controller stops).
    await h.controller.close();
    expect(await h.store.getDeployment('closing', next.deployment.id)).toMatchObject({ status: 'failed', error: expect.stringContaining('shutting down') });
    expect((await h.store.getApp('closing')).releaseId).toBe(release.id);
  }, 30_000);

  it('a deployment whose new jobs crash fails and the old release keeps running untouched', async () => {
    await using h = await startHarness({ crashWhen: (r) => r.env.BROKEN === '1' });
    const { release } = await deployed(h, 'safe');
    await h.client.scale('safe', { web: 2 });
    const before = (await h.client.listJobs('safe')).map((j) => j.id).sort();
    for (const strategy of ['all-at-once', 'one-by-one'] as const) {
      await h.client.updateApp('safe', { strategy });
      const change = changed(await h.client.setEnv('safe', { BROKEN: '1' }));
      await expect(h.client.waitForDeployment('safe', change.deployment.id)).rejects.toMatchObject({ code: 'FLYNN_ERR_CONTROLLER_DEPLOY_FAILED' });
      const d = await h.client.getDeployment('safe', change.deployment.id);
      expect(d.status).toBe('failed');
      expect(d.error).toMatch(/crashed/);
      expect((await h.client.currentRelease('safe')).id).toBe(release.id);
      expect((await h.client.listFormations('safe')).map((f) => [f.releaseId, f.processes])).toEqual([[release.id, { web: 2 }]]);
      expect((await h.client.listJobs('safe')).map((j) => j.id).sort()).toEqual(before);
    }
  });

  it('deploys one-by-one, moving one job at a time', async () => {
    await using h = await startHarness();
    await deployed(h, 'obo');
    await h.client.scale('obo', { web: 3 });
    await h.client.updateApp('obo', { strategy: 'one-by-one' });
    const seen: string[] = [];
    const abort = new AbortController();
    // From the newest event on: whenever the stream opens, it misses nothing of the deploy below.
    const lastEventId = (await h.store.listEvents()).at(-1)?.id;
    const watching = (async () => {
      for await (const e of h.client.events({ app: 'obo', signal: abort.signal, ...(lastEventId ? { lastEventId } : {}) })) {
        if (e.object === 'formation') seen.push(JSON.stringify((e.data as { processes?: unknown }).processes ?? 'deleted'));
      }
    })().catch(() => undefined);
    const change = changed(await h.client.setEnv('obo', { X: '1' }));
    await h.client.waitForDeployment('obo', change.deployment.id);
    abort.abort();
    await watching;
    expect(seen).toEqual(['{"web":1}', '{"web":2}', '{"web":2}', '{"web":1}', '{"web":3}', '{}', '"deleted"']);
  });

  it('refuses a second deployment while one runs', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    await using h = await startHarness({ deployer: { deploy: () => gate } });
    await h.client.createApp({ name: 'busy' });
    const r = await h.client.createRelease('busy', { env: {} });
    const [a, b] = await Promise.allSettled([h.client.deploy('busy', r.id), h.client.deploy('busy', r.id)]);
    expect([a.status, b.status].sort()).toEqual(['fulfilled', 'rejected']);
    const rejected = (a.status === 'rejected' ? a : b) as PromiseRejectedResult;
    expect(rejected.reason).toMatchObject({ status: 409, code: 'FLYNN_ERR_CONTROLLER_DEPLOY_IN_PROGRESS' });
    release();
    const first = (a.status === 'fulfilled' ? a : b) as PromiseFulfilledResult<{ id: string }>;
    await h.client.waitForDeployment('busy', first.value.id);
    expect((await h.client.currentRelease('busy')).id).toBe(r.id);
  });

  it('streams an app\'s jobs (GET /apps/:app/jobs?watch=1) and a deployment, after each change', async () => {
    await using h = await startHarness();
    await deployed(h, 'watched');
    const abort = new AbortController();
    const seen: number[] = [];
    let first!: () => void;
    const firstSeen = new Promise<void>((resolve) => (first = resolve));
    const watching = (async () => {
      for await (const jobs of h.client.watchJobs('watched', { signal: abort.signal })) {
        seen.push(jobs.filter((j) => j.type === 'web').length);
        first();
        if (seen.at(-1) === 3) return jobs;
      }
      return [];
    })();
    await firstSeen;
    await h.client.scale('watched', { web: 3 });
    expect((await watching).filter((j) => j.type === 'web' && j.state === 'up')).toHaveLength(3);
    expect(seen[0]).toBe(1);
    abort.abort();
    const change = changed(await h.client.setEnv('watched', { V: '2' }));
    const states: string[] = [];
    for await (const d of h.client.watchDeployment('watched', change.deployment.id)) {
      states.push(d.status);
      if (d.status === 'complete') break;
    }
    expect(states.at(-1)).toBe('complete');
    await expect(h.client.waitForDeployment('watched', 'no-such-deployment')).rejects.toMatchObject({ status: 404 });
  });

  it('deleting an app aborts its running deployment instead of waiting for it', async () => {
    await using h = await startHarness({ deployer: { deploy: (_plan, options) => new Promise((_, reject) => options?.signal?.addEventListener('abort', () => reject(options.signal?.reason))) } });
    await h.client.createApp({ name: 'stuck' });
    const r = await h.client.createRelease('stuck', { env: {} });
    const d = await h.client.deploy('stuck', r.id);
    // The deployer never finishes unless aborted: waiting for it would hang the delete.
    await h.client.deleteApp('stuck');
    expect(d.status).toBe('pending');
  });

  it('a controller restarted on persistent data rolls back a deployment stored mid-flight by an older version', async () => {
    const kv = new MemoryKv();
    const store = new MemoryStore(kv);
    const app = await store.createApp({ name: 'int' });
    const r = await store.createRelease(app.id, { artifactId: null, env: {}, processes: {} });
    const d = await store.createDeployment({ appId: app.id, oldReleaseId: null, newReleaseId: r.id, strategy: 'all-at-once', status: 'running', processes: {} });
    await using h = await startHarness({ store });
    expect(await h.client.getDeployment('int', d.id)).toMatchObject({ status: 'failed', state: 'failed', error: expect.stringMatching(/^interrupted by a controller restart/) });
  });

  it('runs one-off jobs with streamed output and exit code, lists and kills jobs', async () => {
    await using h = await startHarness();
    await deployed(h, 'runner');
    const out: string[] = [];
    let status = -1;
    for await (const o of h.client.run('runner', { cmd: ['sh', '-c', 'echo "$GREETING $EXTRA"; echo oops >&2; exit 7'], env: { EXTRA: 'there' } })) {
      if (o.kind === 'output') out.push(`${o.stream}:${o.data.trim()}`);
      if (o.kind === 'exit') status = o.status;
    }
    expect(out.sort()).toEqual(['stderr:oops', 'stdout:hi there']);
    expect(status).toBe(7);
    const web = (await h.client.listJobs('runner')).find((j) => j.type === 'web');
    await h.client.killJob('runner', web?.id ?? '');
    expect((await h.client.listJobs('runner')).map((j) => j.id)).not.toContain(web?.id);
    await expect(h.client.killJob('runner', 'no-such-job')).rejects.toMatchObject({ status: 404 });
    const detached = await h.client.runDetached('runner', { cmd: ['true'] });
    expect(detached.id).toMatch(/[0-9a-f-]{36}/);
  });

  it('streams logs by job and follows new lines', async () => {
    await using h = await startHarness();
    await deployed(h, 'logs');
    const [web] = await h.client.listJobs('logs');
    const lines = [];
    for await (const l of h.client.logs('logs', { job: web?.id ?? '' })) lines.push(l.msg);
    expect(lines).toEqual(['web job of release v1 up']);
    const run = async (script: string) => {
      for await (const _ of h.client.run('logs', { cmd: ['sh', '-c', script] })) {
        // drain
      }
    };
    // A one-off job before the follow: its line, from the history, shows the follow is open.
    await run('echo zero');
    const abort = new AbortController();
    const followed: string[] = [];
    let open!: () => void;
    const opened = new Promise<void>((resolve) => (open = resolve));
    const following = (async () => {
      for await (const l of h.client.logs('logs', { type: 'run', follow: true, signal: abort.signal })) {
        followed.push(l.msg);
        if (l.msg === 'zero') open();
        if (followed.length === 3) abort.abort();
      }
    })().catch(() => undefined);
    await opened;
    // A job started after the follow opened: its lines are followed as they come.
    await run('echo one; sleep 0.05; echo two');
    await following;
    expect(followed).toEqual(['zero', 'one', 'two']);
    await expect(h.client.logs('logs', { job: 'nope' }).next()).rejects.toMatchObject({ status: 404 });
  });

  it('adds, lists and removes http and tcp routes with typed ids', async () => {
    await using h = await startHarness();
    await h.client.createApp({ name: 'site' });
    const http = await h.client.createRoute('site', { type: 'http', domain: 'Site.Example.com', service: 'site-web', path: '/shop', sticky: true });
    expect(http).toMatchObject({ type: 'http', domain: 'site.example.com', path: '/shop', sticky: true });
    const tcp = await h.client.createRoute('site', { type: 'tcp', port: 2200, service: 'site-ssh' });
    expect((await h.client.listRoutes('site')).map((r) => r.id)).toEqual([http.id, tcp.id]);
    expect((await h.client.listAllRoutes()).length).toBe(2);
    expect(await h.client.getRoute('site', http.id)).toEqual(http);
    await expect(h.client.createRoute('site', { type: 'tcp', port: 2200, service: 'x' })).rejects.toMatchObject({ status: 409 });
    await expect(h.client.createRoute('site', { type: 'http', domain: 'bad domain', service: 'x' })).rejects.toMatchObject({ detail: { field: 'domain' } });
    await expect(h.client.createRoute('site', { type: 'http', service: 'x' } as never)).rejects.toMatchObject({ detail: { field: 'domain' } });
    await h.client.deleteRoute('site', http.id);
    await expect(h.client.getRoute('site', http.id)).rejects.toMatchObject({ status: 404 });
    await h.client.deleteApp('site');
    expect(await h.client.listAllRoutes()).toEqual([]);
  });

  it("carries the router's per-route options, names the bad field in a 400, and updates them with PATCH", async () => {
    await using h = await startHarness();
    await h.client.createApp({ name: 'opts' });
    const options = { timeouts: { connectMs: 500, responseHeadersMs: 30_000 }, healthCheck: { path: '/healthz', intervalMs: 1000 }, redirectHttps: true };
    const route = await h.client.createRoute('opts', { type: 'http', domain: 'opts.example.com', service: 'opts-web', ...options });
    expect(route).toMatchObject(options);
    expect(await h.client.getRoute('opts', route.id)).toEqual(route);
    const bad = async (body: Record<string, unknown>) => (await h.raw('POST', '/apps/opts/routes', { body: JSON.stringify({ type: 'http', domain: 'b.example.com', service: 'opts-web', ...body }), headers: json })).body;
    expect(await bad({ timeouts: { connectMs: 0 } })).toMatchObject({ detail: { field: 'timeouts.connectMs' } });
    expect(await bad({ timeouts: { connectMs: 1.5 } })).toMatchObject({ detail: { field: 'timeouts.connectMs' } });
    expect(await bad({ timeouts: { readMs: 10 } })).toMatchObject({ detail: { field: 'timeouts.readMs' } });
    expect(await bad({ healthCheck: { intervalMs: 10 } })).toMatchObject({ detail: { field: 'healthCheck.path' } });
    expect(await bad({ healthCheck: { path: 'healthz' } })).toMatchObject({ detail: { field: 'healthCheck.path' } });
    expect(await bad({ redirectHttps: 'yes' })).toMatchObject({ detail: { field: 'redirectHttps' } });
    const tcp = await h.raw('POST', '/apps/opts/routes', { body: JSON.stringify({ type: 'tcp', port: 2201, service: 'opts-db', timeouts: { connectMs: 5 } }), headers: json });
    expect(tcp).toMatchObject({ status: 400, body: { detail: { field: 'timeouts' } } });

    const updated = await h.client.updateRoute('opts', route.id, { timeouts: { idleMs: 5000 }, healthCheck: null, redirectHttps: false, service: 'opts-api' });
    expect(updated).toMatchObject({ domain: 'opts.example.com', service: 'opts-api', timeouts: { idleMs: 5000 }, redirectHttps: false });
    expect(updated).not.toHaveProperty('healthCheck');
    expect(await h.client.getRoute('opts', route.id)).toEqual(updated);
    await expect(h.client.updateRoute('opts', route.id, { timeouts: { idleMs: -1 } })).rejects.toMatchObject({ status: 400, detail: { field: 'timeouts.idleMs' } });
    await expect(h.client.updateRoute('opts', route.id, { domain: 'x.example.com' } as never)).rejects.toMatchObject({ status: 400, detail: { field: 'domain' } });
    await expect(h.client.updateRoute('opts', 'http/nope', { sticky: true })).rejects.toMatchObject({ status: 404 });
  });

  it('adds, lists and removes SSH keys with SHA256 fingerprints', async () => {
    await using h = await startHarness();
    const key = await h.client.addKey(KEY_ED25519);
    expect(key.fingerprint).toBe(KEY_ED25519_FP);
    expect(await h.client.listKeys()).toEqual([key]);
    await expect(h.client.addKey('ssh-rsa AAAA')).rejects.toMatchObject({ status: 400, detail: { field: 'key' } });
    await expect(h.client.addKey(KEY_ED25519)).rejects.toMatchObject({ status: 409 });
    await h.client.removeKey(key.fingerprint);
    expect(await h.client.listKeys()).toEqual([]);
    await expect(h.client.removeKey(key.id)).rejects.toMatchObject({ status: 404 });
  });

  it('streams events over SSE with ids and resumes after Last-Event-Id', async () => {
    await using h = await startHarness();
    await h.client.createApp({ name: 'ev1' });
    await h.client.createApp({ name: 'ev2' });
    await h.client.addKey(KEY_ED25519);
    const got = [];
    for await (const e of h.client.events({ lastEventId: '1' })) {
      got.push(`${e.id}:${e.object}.${e.op}`);
      if (got.length === 2) break;
    }
    expect(got).toEqual(['2:app.create', '3:key.create']);
    const filtered = [];
    for await (const e of h.client.events({ app: 'ev2', lastEventId: '0' })) {
      filtered.push(e.id);
      break;
    }
    expect(filtered).toEqual(['2']);
    expect((await h.raw('GET', '/events', { headers: { 'last-event-id': 'abc' } })).body.detail?.field).toBe('last-event-id');
  });

  it('refuses to scale a type the release does not have with a 400 naming the types it has, and the client throws ProcessTypeNotFoundError', async () => {
    await using h = await startHarness();
    const { release } = await deployed(h, 'types');
    for (const count of [1, 0]) {
      const res = await h.raw('PUT', '/apps/types/scale', { body: JSON.stringify({ processes: { web: 2, clock: count } }), headers: json });
      expect(res).toEqual({
        status: 400,
        body: {
          code: 'FLYNN_ERR_CONTROLLER_NO_SUCH_PROCESS_TYPE',
          message: 'release v1 of types has no process type "clock" (its process types: web, worker)',
          detail: { field: 'processes.clock', app: 'types', version: 1, type: 'clock', types: ['web', 'worker'] },
          retryable: false,
        },
      });
    }
    const err = await h.client.scale('types', { clock: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProcessTypeNotFoundError);
    expect(err).toMatchObject({ status: 400, code: ControllerErrorCodes.NO_SUCH_PROCESS_TYPE, detail: { type: 'clock', types: ['web', 'worker'] } });
    await expect(h.client.putFormation('types', release.id, { clock: 1 })).rejects.toBeInstanceOf(ProcessTypeNotFoundError);
    // Nothing was scaled, not even the type the release has.
    expect((await h.client.getFormation('types', release.id)).processes).toEqual({ web: 1 });
    const bare = await h.client.createRelease('types', { env: {} });
    await h.client.waitForDeployment('types', (await h.client.deploy('types', bare.id)).id);
    await expect(h.client.scale('types', { web: 1 })).rejects.toMatchObject({ message: 'release v2 of types has no process type "web" (it has no process types)' });
  });

  it('starts web=1 on the first release with a web type (and says so: firstWeb), also after env changes made releases without one, and keeps web scaled to 0', async () => {
    await using h = await startHarness();
    await h.client.createApp({ name: 'late' });
    const env = changed(await h.client.setEnv('late', { A: '1' }));
    expect(env.deployment.processes).toEqual({});
    expect(env.deployment.firstWeb).toBeUndefined();
    await h.client.waitForDeployment('late', env.deployment.id);
    const artifact = await h.client.createArtifact({ url: 'http://127.0.0.1:9/slug.tgz', processes: { web: { cmd: ['web'] }, worker: { cmd: ['worker'] } } });
    const v2 = await h.client.createRelease('late', { artifactId: artifact.id, env: { A: '1' } });
    const first = await h.client.deploy('late', v2.id);
    expect(first.processes).toEqual({ web: 1 });
    expect(first.firstWeb).toBe(true);
    await h.client.waitForDeployment('late', first.id);
    expect((await h.client.listJobs('late')).map((j) => j.type)).toEqual(['web']);
    expect((await h.client.getApp('late')).scale).toEqual({ web: 1 });
    // Scaled to 0 by the user, web stays at 0 on later releases.
    await h.client.scale('late', { web: 0 });
    expect((await h.client.getApp('late')).scale).toEqual({ web: 0 });
    const next = changed(await h.client.setEnv('late', { A: '2' }));
    expect(next.deployment.processes).toEqual({});
    expect(next.deployment.firstWeb).toBeUndefined();
  });

  it('a rollback to a release without a type keeps its count, and rolling forward runs it again', async () => {
    await using h = await startHarness();
    await h.client.createApp({ name: 'fwd' });
    const webOnly = await h.client.createArtifact({ url: 'http://127.0.0.1:9/v1.tgz', processes: { web: { cmd: ['web'] } } });
    const both = await h.client.createArtifact({ url: 'http://127.0.0.1:9/v2.tgz', processes: { web: { cmd: ['web'] }, worker: { cmd: ['worker'] } } });
    for (const artifact of [webOnly, both]) {
      const r = await h.client.createRelease('fwd', { artifactId: artifact.id });
      await h.client.waitForDeployment('fwd', (await h.client.deploy('fwd', r.id)).id);
    }
    await h.client.scale('fwd', { web: 2, worker: 3 });
    const types = async () => (await h.client.listJobs('fwd')).map((j) => j.type).sort();
    expect(await types()).toEqual(['web', 'web', 'worker', 'worker', 'worker']);

    const back = await h.client.rollback('fwd', 'v1');
    // The release without worker runs web only; worker's count is kept, not run.
    expect(back.deployment.processes).toEqual({ web: 2 });
    await h.client.waitForDeployment('fwd', back.deployment.id);
    expect(await types()).toEqual(['web', 'web']);
    expect((await h.client.getFormation('fwd', back.release.id)).processes).toEqual({ web: 2 });
    expect((await h.client.getApp('fwd')).scale).toEqual({ web: 2, worker: 3 });

    const forward = await h.client.rollback('fwd', 'v2');
    expect(forward.deployment.processes).toEqual({ web: 2, worker: 3 });
    await h.client.waitForDeployment('fwd', forward.deployment.id);
    expect(await types()).toEqual(['web', 'web', 'worker', 'worker', 'worker']);
  });

  it('deleting an app removes its formations so the scheduler stops its jobs', async () => {
    await using h = await startHarness();
    await deployed(h, 'bye');
    await h.client.createRoute('bye', { type: 'http', domain: 'bye.example.com', service: 'bye-web' });
    await h.client.deleteApp('bye');
    expect(await h.client.listAllFormations()).toEqual([]);
    expect(await h.client.listAllRoutes()).toEqual([]);
  });

  it('refuses platform-set names (PORT, HOSTNAME, FLYNN_*) in env with a 400 naming the key and why', async () => {
    await using h = await startHarness();
    const { release } = await deployed(h, 'owned');
    for (const key of ['PORT', 'HOSTNAME', 'SLUG_URL', 'FLYNN_APP', 'FLYNN_ANYTHING']) {
      const res = await h.raw('PATCH', '/apps/owned/env', { body: JSON.stringify({ set: { [key]: '1234' } }), headers: json });
      expect(res.status, key).toBe(400);
      expect(res.body, key).toMatchObject({ code: 'FLYNN_ERR_CONTROLLER_INVALID_INPUT', detail: { field: 'set' } });
      expect(res.body.message, key).toMatch(new RegExp(`^${key} cannot be set in an app's env: `));
    }
    await expect(h.client.setEnv('owned', { PORT: '1234' })).rejects.toMatchObject({ status: 400, message: "PORT cannot be set in an app's env: the platform sets PORT to the port each web job must listen on" });
    await expect(h.client.createRelease('owned', { artifactId: release.artifactId, env: { PORT: '1' } })).rejects.toMatchObject({ status: 400, detail: { field: 'env' } });
    await expect(h.client.runDetached('owned', { cmd: ['true'], env: { FLYNN_JOB_ID: 'x' } })).rejects.toMatchObject({ status: 400 });
    // Names that merely look alike are the app's own.
    expect(changed(await h.client.setEnv('owned', { PORTS: '1', MY_PORT: '2', FLYNNISH: '3' })).release.env).toMatchObject({ PORTS: '1', MY_PORT: '2' });
    expect((await h.client.listReleases('owned')).map((r) => r.version)).toEqual([1, 2]);
  });

  it('a PORT set before it was refused is carried over unchanged, and can be unset', async () => {
    await using h = await startHarness();
    const { artifact } = await deployed(h, 'legacy');
    const app = await h.client.getApp('legacy');
    const old = await h.store.createRelease(app.id, { artifactId: artifact.id, env: { PORT: '1234', A: '1' }, processes: artifact.processes });
    await h.client.waitForDeployment('legacy', (await h.client.deploy('legacy', old.id)).id);
    // What a git push does: a new release with the current env copied.
    const pushed = await h.client.createRelease('legacy', { artifactId: artifact.id, env: { PORT: '1234', A: '1' } });
    expect(pushed.env).toEqual({ PORT: '1234', A: '1' });
    await expect(h.client.createRelease('legacy', { artifactId: artifact.id, env: { PORT: '999' } })).rejects.toMatchObject({ status: 400 });
    const unset = changed(await h.client.unsetEnv('legacy', ['PORT']));
    expect(unset.release.env).toEqual({ A: '1' });
  });

  it('takes a unique job id prefix of 8+ characters wherever a job id is taken', async () => {
    await using h = await startHarness();
    await deployed(h, 'short');
    await h.client.scale('short', { web: 2 });
    const [a, b] = await h.client.listJobs('short');
    const lines = [];
    for await (const l of h.client.logs('short', { job: (a?.id ?? '').slice(0, 8) })) lines.push(l);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.every((l) => l.jobId === a?.id)).toBe(true);
    const named = []; // as a log line names the job: `web.<first 8>`
    for await (const l of h.client.logs('short', { job: `${a?.type}.${(a?.id ?? '').slice(0, 8)}` })) named.push(l);
    expect(named).toEqual(lines);
    await h.client.killJob('short', (b?.id ?? '').slice(0, 12));
    expect((await h.client.listJobs('short')).map((j) => j.id)).not.toContain(b?.id);
    const tooShort = await h.raw('DELETE', `/apps/short/jobs/${(a?.id ?? '').slice(0, 4)}`);
    expect(tooShort).toMatchObject({ status: 400, body: { detail: { field: 'job' } } });
    expect(tooShort.body.message).toMatch(/too short: give at least 8 characters/);
    await expect(h.client.killJob('short', 'ffffffff-no-such')).rejects.toMatchObject({ status: 404 });
  });

  it('an ambiguous job id prefix is a 400 listing the candidates, and nothing is killed', async () => {
    const killed: string[] = [];
    const job = (id: string): Job => ({ id, appId: '', releaseId: 'r', type: 'web', state: 'up', cmd: [], createdAt: new Date(0).toISOString() });
    const grid: JobRunner = {
      listJobs: async () => [job('abcdef01-1111-4000-8000-000000000000'), job('abcdef01-2222-4000-8000-000000000000'), job('12345678-3333-4000-8000-000000000000')],
      killJob: async (_app, id) => void killed.push(id),
      watchJobs: () => { throw new Error('not used'); },
      runJob: async () => { throw new Error('not used'); },
      logs: async () => { throw new Error('not used'); },
    };
    await using controller = await startController({ key: KEY, jobs: grid, host: '127.0.0.2' });
    const client = new ControllerClient({ url: controller.url, key: KEY });
    try {
      await client.createApp({ name: 'amb' });
      const err = await client.killJob('amb', 'abcdef01').catch((e: unknown) => e);
      expect(err).toMatchObject({ status: 400, code: 'FLYNN_ERR_CONTROLLER_AMBIGUOUS_JOB', detail: { field: 'job', candidates: ['abcdef01-1111-4000-8000-000000000000', 'abcdef01-2222-4000-8000-000000000000'] } });
      expect((err as Error).message).toBe('job id prefix "abcdef01" matches 2 jobs: abcdef01-1111-4000-8000-000000000000, abcdef01-2222-4000-8000-000000000000');
      expect(killed).toEqual([]);
      await client.killJob('amb', 'abcdef01-2');
      await client.killJob('amb', '12345678');
      expect(killed).toEqual(['abcdef01-2222-4000-8000-000000000000', '12345678-3333-4000-8000-000000000000']);
    } finally {
      await client.close();
    }
  });
});
