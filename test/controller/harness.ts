import { request } from 'undici';
import { ControllerClient, MemoryStore, startController, type ControllerHandle, type ControllerOptions, type Store } from '../../src/controller/index.js';
import { FakeCluster } from '../../src/controller/testing/index.js';
import type { Deployer, EnvChange, Release, ReleaseChange } from '../../src/controller/index.js';

export interface WireBody {
  code?: string;
  message?: string;
  detail?: { field?: string };
}

export const KEY = 'test-cluster-key';

/** The release and deployment of an env change that must have changed something. */
export function changed(change: EnvChange): ReleaseChange {
  if (change.deployment === null) throw new Error(`the env change changed nothing (${change.unchanged.join(', ')})`);
  return change;
}

export interface Harness extends AsyncDisposable {
  controller: ControllerHandle;
  client: ControllerClient;
  cluster: FakeCluster;
  store: Store;
  raw(method: string, path: string, options?: { body?: string; headers?: Record<string, string> }): Promise<{ status: number; body: WireBody }>;
}

/** A real controller on 127.0.0.2 over a FakeCluster grid. */
export async function startHarness(options: { deployer?: Deployer; store?: Store; crashWhen?: (r: Release, type: string) => boolean; host?: string; timeoutMs?: number; controller?: Pick<ControllerOptions, 'appDomain' | 'reservedPorts'> } = {}): Promise<Harness> {
  const store = options.store ?? new MemoryStore();
  const cluster = new FakeCluster({ store, ...(options.crashWhen ? { crashWhen: options.crashWhen } : {}) });
  const controller = await startController({ key: KEY, store, jobs: cluster, ...(options.deployer ? { deployer: options.deployer } : {}), host: options.host ?? '127.0.0.2', gitHost: '127.0.0.2:2222', ...options.controller });
  const client = new ControllerClient({ url: controller.url, key: KEY });
  return {
    controller,
    client,
    cluster,
    store,
    async raw(method, path, opts = {}) {
      const res = await request(controller.url + path, { method: method as 'GET', headers: { authorization: `Bearer ${KEY}`, ...opts.headers }, ...(opts.body !== undefined ? { body: opts.body } : {}) });
      const text = await res.body.text();
      let body = text as unknown as WireBody;
      try {
        body = JSON.parse(text) as WireBody;
      } catch {
        // not JSON
      }
      return { status: res.statusCode, body };
    },
    async [Symbol.asyncDispose]() {
      await client.close();
      await controller.close();
      await store.close();
    },
  };
}
