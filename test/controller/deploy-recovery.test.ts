/**
 * A deployment as a recorded state machine, on the memory store: a controller that stops dead
 * right after any step of a deploy is committed (its store freezes: nothing after that commit
 * happens, as after a SIGKILL) and a new controller started on the same data finishes the deploy
 * or rolls it back. Afterwards one release's formation runs, the app's release is that one, its
 * jobs are the only ones, and a later deploy works. test/examples/deploy-kill.test.ts does the
 * same to a real `npm start` process.
 */
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/common/logger.js';
import { DeploymentManager } from '../../src/controller/deployments.js';
import { FormationDeployer, KvStore, MemoryKv, MemoryStore, type DeployState, type DeploymentStrategy, type Kv, type KvTxn } from '../../src/controller/index.js';
import { FakeCluster } from '../../src/controller/testing/index.js';
import { changed, startHarness } from './harness.js';

const never = new Promise<never>(() => undefined);

/** A {@link Kv} that stops answering for good right after the commit that records the `nth` step `state` of a deployment. */
class FreezingKv implements Kv {
  private seen = 0;
  private frozen = false;
  private onFrozen!: () => void;
  /** Resolves once the step is committed and everything after it hangs. */
  readonly stopped = new Promise<void>((r) => (this.onFrozen = r));

  constructor(
    private readonly inner: Kv,
    private readonly state: DeployState,
    private readonly nth = 1,
  ) {}

  get(key: string) {
    return this.frozen ? never : this.inner.get(key);
  }

  list(prefix: string) {
    return this.frozen ? never : this.inner.list(prefix);
  }

  async txn<T>(fn: (tx: KvTxn) => Promise<T>): Promise<T> {
    if (this.frozen) return never;
    let hit = false;
    const out = await this.inner.txn(async (tx) => {
      hit = false;
      const put = (key: string, value: string) => {
        if (key.startsWith('deployments/') && (JSON.parse(value) as { state?: string }).state === this.state) hit = true;
        tx.put(key, value);
      };
      return fn({ ...tx, put });
    });
    if (hit && ++this.seen === this.nth) {
      this.frozen = true;
      this.onFrozen();
      return never;
    }
    return out;
  }

  watch(prefix: string, onPut: (key: string, value: string) => void) {
    return this.inner.watch(prefix, (k, v) => {
      if (!this.frozen) onPut(k, v);
    });
  }

  async close() {}
}

/** The app `web` runs v1 at web=2; a deploy of v2 (crashing when `broken`) stops dead at the `nth` step `state`; a controller starts on the same data. */
async function crashDuringDeploy(strategy: DeploymentStrategy, state: DeployState, nth = 1, broken = false) {
  const kv = new MemoryKv();
  const crashWhen = (r: { env: Record<string, string> }) => r.env.BROKEN === '1';
  const setup = new MemoryStore(kv);
  const app = await setup.createApp({ name: 'web', strategy });
  await setup.setAppScale(app.id, { web: 2 });
  const processes = { web: { cmd: ['web'] } };
  const v1 = await setup.createRelease(app.id, { artifactId: null, env: { V: '1' }, processes });
  const v2 = await setup.createRelease(app.id, { artifactId: null, env: { V: '2', ...(broken ? { BROKEN: '1' } : {}) }, processes });
  const first = new DeploymentManager(setup, new FormationDeployer({ jobs: new FakeCluster({ store: setup }) }), silentLogger);
  await first.start(await setup.getApp(app.id), v1);
  await first.settled(app.id);

  const freezing = new FreezingKv(kv, state, nth);
  const store = new KvStore(freezing);
  const dying = new DeploymentManager(store, new FormationDeployer({ jobs: new FakeCluster({ store, crashWhen }) }), silentLogger);
  void dying.start(await store.getApp(app.id), v2).catch(() => undefined);
  await freezing.stopped;

  const h = await startHarness({ store: new MemoryStore(kv), crashWhen });
  return { h, v1, v2 };
}

/** Exactly one formation, of `release`, at web=2; the app runs `release`; its jobs are that release's. */
async function expectOnly(h: Awaited<ReturnType<typeof startHarness>>, release: { id: string }) {
  expect((await h.client.getApp('web')).releaseId).toBe(release.id);
  expect((await h.client.listFormations('web')).map((f) => [f.releaseId, f.processes])).toEqual([[release.id, { web: 2 }]]);
  const jobs = await h.client.listJobs('web');
  expect(jobs.map((j) => [j.releaseId, j.state])).toEqual([
    [release.id, 'up'],
    [release.id, 'up'],
  ]);
}

/** The deployment of `release` (two deployments may share a createdAt millisecond). */
async function deploymentOf(h: Awaited<ReturnType<typeof startHarness>>, release: { id: string }) {
  return (await h.client.listDeployments('web')).find((d) => d.newReleaseId === release.id);
}

async function laterDeployWorks(h: Awaited<ReturnType<typeof startHarness>>) {
  const next = changed(await h.client.setEnv('web', { V: '3', BROKEN: '0' }));
  await h.client.waitForDeployment('web', next.deployment.id);
  await expectOnly(h, next.release);
}

const rolledBack: Array<[DeploymentStrategy, DeployState, number]> = [
  ['all-at-once', 'pending', 1],
  ['all-at-once', 'starting-new', 1],
  ['one-by-one', 'starting-new', 1],
  ['one-by-one', 'starting-new', 2],
  ['one-by-one', 'starting-new', 3],
];
const finished: Array<[DeploymentStrategy, DeployState, number]> = [
  // #4 stopped the old release's last job: the new one was up at full scale (nothing would serve after a rollback).
  ['one-by-one', 'starting-new', 4],
  ['all-at-once', 'new-up', 1],
  ['all-at-once', 'stopping-old', 1],
  ['all-at-once', 'done', 1],
  ['one-by-one', 'new-up', 1],
  ['one-by-one', 'stopping-old', 1],
];

describe('a deployment interrupted by a controller that stops dead (memory store)', () => {
  it.each(rolledBack)('%s, stopped after step %s #%i: rolled back, the old release serves at its counts', async (strategy, state, nth) => {
    const { h, v1, v2 } = await crashDuringDeploy(strategy, state, nth);
    await using _ = h;
    const d = await deploymentOf(h, v2);
    expect(d).toMatchObject({ state: 'failed', status: 'failed', error: expect.stringMatching(/^interrupted by a controller restart before the new release was up/) });
    await expectOnly(h, v1);
    await laterDeployWorks(h);
  });

  it.each(finished)('%s, stopped after step %s #%i: finished, the new release serves alone', async (strategy, state, nth) => {
    const { h, v2 } = await crashDuringDeploy(strategy, state, nth);
    await using _ = h;
    const d = await deploymentOf(h, v2);
    expect(d).toMatchObject({ state: 'done', status: 'complete' });
    await expectOnly(h, v2);
    await laterDeployWorks(h);
  });

  it('stopped while rolling back a deploy whose jobs crashed: stays failed with its error, the old release serves', async () => {
    const { h, v1, v2 } = await crashDuringDeploy('all-at-once', 'rolling-back', 1, true);
    await using _ = h;
    const d = await deploymentOf(h, v2);
    expect(d).toMatchObject({ state: 'failed', error: expect.stringMatching(/crashed/) });
    await expectOnly(h, v1);
    await laterDeployWorks(h);
  });

  it('records every step of a deploy in order, each with its writes', async () => {
    await using h = await startHarness();
    const store = h.store;
    const app = await store.createApp({ name: 'web', strategy: 'one-by-one' });
    await store.setAppScale(app.id, { web: 2 });
    const processes = { web: { cmd: ['web'] } };
    const v1 = await store.createRelease(app.id, { artifactId: null, env: {}, processes });
    await h.client.waitForDeployment('web', (await h.client.deploy('web', v1.id)).id);
    const v2 = await store.createRelease(app.id, { artifactId: null, env: { V: '2' }, processes });
    const d = await h.client.deploy('web', v2.id);
    await h.client.waitForDeployment('web', d.id);
    const steps = (await store.listEvents({ appId: app.id }))
      .filter((e) => e.object === 'deployment' && e.objectId === d.id && (e.data as { state?: string }).state !== undefined && (e.data as { step?: string }).step === undefined)
      .map((e) => (e.data as { state: string }).state);
    expect(steps).toEqual(['pending', 'starting-new', 'starting-new', 'starting-new', 'starting-new', 'new-up', 'stopping-old', 'done']);
  });
});
