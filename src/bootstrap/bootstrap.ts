/**
 * `bootstrap(manifest)` (flynn-bootstrap): start layer 1 onto a running layer 0. In steps, each
 * reported: check that discovery answers, wait for the host agents, open the controller's store,
 * then shelf, scheduler, router, git receiver and controller.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { UnavailableError } from '../common/errors.js';
import { componentKey } from '../common/http/key-auth.js';
import { settlesWithin } from '../common/lifecycle.js';
import type { Logger } from '../common/logger.js';
import { silentLogger } from '../common/logger.js';
import type { TlsCredentials } from '../common/tls/self-signed.js';
import { EtcdStore } from '../controller/etcd-store.js';
import { MemoryStore } from '../controller/memory-store.js';
import type { Store } from '../controller/store.js';
import { createDiscovery, type DiscoveryConfig } from '../discovery/create.js';
import type { Discovery } from '../discovery/discovery.js';
import type { EtcdCredentials } from '../discovery/etcd-credentials.js';
import type { Instance } from '../discovery/types.js';
import { HOST_SERVICE } from '../scheduler/host-client.js';
import { checkRestoreFinished, restoreDataDir, type RestoredBackup } from './backup-restore.js';
import { CloseStack } from './close-stack.js';
import { BootstrapErrorCodes, BootstrapManifestError } from './errors.js';
import { validateManifest, type BootstrapManifest, type ManifestDiscovery, type ManifestEtcdAuth } from './manifest.js';
import { chooseRuntime, launchPlatform, planPlatform, type BootstrapStep, type Platform } from './platform.js';

export const BOOTSTRAP_DEFAULTS = Object.freeze({
  /** Key prefix of etcd discovery (the host agents' default too). */
  etcdPrefix: '/flynn-ts',
  /** Longest wait for discovery to answer, in ms. */
  discoveryTimeoutMs: 5_000,
  /** Host agents to wait for. */
  waitHostsMin: 1,
  /** Longest wait for them, in ms (also the scheduler's to see them ready). */
  waitHostsTimeoutMs: 60_000,
});

export interface BootstrapOptions {
  /** Default silent. */
  logger?: Logger;
  /** Each step as it completes (and `wait-hosts` as hosts appear). */
  onStep?: (step: BootstrapStep) => void;
}

/** A bootstrapped layer 1; `close()` also closes the store and discovery connections it opened (never the host agents). */
export interface BootstrapHandle extends Platform {
  /** Ids of the host agents seen when it started. */
  readonly hostIds: readonly string[];
}

/** `etcd at http://a:2379,http://b:2379 (prefix /x)` — how a step names the discovery. */
function describeDiscovery(d: ManifestDiscovery): string {
  return d.backend === 'etcd' ? `etcd at ${d.endpoints.join(',')} (prefix ${d.prefix ?? BOOTSTRAP_DEFAULTS.etcdPrefix})` : `discoverd at ${d.url}`;
}

/** The discovery to use; a discovery server is sent the discovery key derived from the cluster key. */
function discoveryConfig(d: ManifestDiscovery, clusterKey: string, credentials: EtcdCredentials | undefined): DiscoveryConfig {
  return d.backend === 'etcd' ? { backend: 'etcd', endpoints: d.endpoints, prefix: d.prefix ?? BOOTSTRAP_DEFAULTS.etcdPrefix, ...(credentials === undefined ? {} : { credentials }) } : { backend: 'http', url: d.url, key: componentKey(clusterKey, 'discovery') };
}

/** Resolve with `work`, or reject after `ms` with `onTimeout()`. */
async function within<T>(work: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  if (!(await settlesWithin(work, ms))) throw onTimeout();
  return work;
}

const hostName = (i: Instance) => `${i.meta.id ?? i.id} at ${i.addr}`;

/** Follow `flynn-host` until `min` instances are up; a timeout says how many there were. */
async function waitForHosts(discovery: Discovery, min: number, timeoutMs: number, step: (message: string) => void): Promise<Instance[]> {
  const abort = new AbortController();
  const live = new Map<string, Instance>();
  let reported = -1;
  const report = () => {
    if (live.size === reported) return;
    reported = live.size;
    step(`${live.size}/${min} host${min === 1 ? '' : 's'} up${live.size ? ` (${[...live.values()].map(hostName).join(', ')})` : ''}`);
  };
  const watching = (async () => {
    for await (const ev of discovery.watch(HOST_SERVICE, { signal: abort.signal })) {
      if (ev.type === 'current') {
        live.clear();
        for (const i of ev.instances) live.set(i.id, i);
      } else if (ev.type === 'up' || ev.type === 'update') live.set(ev.instance.id, ev.instance);
      else if (ev.type === 'down') live.delete(ev.instance.id);
      if (ev.type !== 'leader') report();
      if (live.size >= min) return [...live.values()];
    }
    throw new UnavailableError(BootstrapErrorCodes.DISCOVERY_UNAVAILABLE, 'the discovery watch of flynn-host ended while waiting for host agents');
  })();
  try {
    return await within(watching, timeoutMs, () => {
      const seen = live.size ? `: ${[...live.values()].map(hostName).join(', ')}` : '';
      return new UnavailableError(
        BootstrapErrorCodes.NOT_READY,
        `wait-hosts: only ${live.size}/${min} host agents registered as ${HOST_SERVICE} within ${timeoutMs} ms${seen}. Start more (examples/host/main.ts --discovery etcd with the same prefix) or lower waitHosts.min`,
        { detail: { seen: live.size, min, hosts: [...live.values()].map((i) => i.meta.id ?? i.id) } },
      );
    });
  } finally {
    abort.abort();
    await watching.catch(() => {});
  }
}

/** Start layer 1 from a manifest onto the running layer 0 it names. */
export async function bootstrap(manifest: BootstrapManifest, options: BootstrapOptions = {}): Promise<BootstrapHandle> {
  const m = validateManifest(manifest, { interpolate: false });
  const logger = options.logger ?? silentLogger;
  const onStep = options.onStep ?? (() => {});
  const step = (name: string, message: string) => {
    logger.info(`${name}: ${message}`);
    onStep({ step: name, message });
  };
  const waitMs = m.waitHosts?.timeoutMs ?? BOOTSTRAP_DEFAULTS.waitHostsTimeoutMs;
  const min = m.waitHosts?.min ?? BOOTSTRAP_DEFAULTS.waitHostsMin;
  const tls = m.controller?.tls === undefined ? undefined : await readTlsFiles(m.controller.tls);
  let restore: RestoredBackup | undefined;
  if (m.fromBackup !== undefined) {
    if (m.dataDir === undefined) throw new BootstrapManifestError([{ field: 'fromBackup', message: 'fromBackup needs a dataDir to restore the git repos, slugs and keys into' }], {});
    await mkdir(m.dataDir, { recursive: true, mode: 0o700 });
    restore = await restoreDataDir(m.fromBackup, m.dataDir);
  } else if (m.dataDir !== undefined) await checkRestoreFinished(m.dataDir);
  const plan = planPlatform({
    host: m.listen ?? '127.0.0.1',
    ports: { controller: m.controller?.port, router: m.router?.port, git: m.git?.port, shelf: m.shelf?.port },
    build: m.build ?? 'auto',
    ...(m.image === undefined ? {} : { image: m.image }),
    ...(m.buildNetwork === undefined ? {} : { buildNetwork: m.buildNetwork }),
    ...(m.buildEnv === undefined ? {} : { buildEnv: m.buildEnv }),
    readyHosts: min,
    readyTimeoutMs: waitMs,
    labels: m.labels ?? {},
    logger,
    onProgress: (line) => step('build', line),
    onStep,
    ...(m.key === undefined ? {} : { key: m.key }),
    ...(m.domain === undefined ? {} : { domain: m.domain }),
    ...(m.dataDir === undefined ? {} : { dataDir: m.dataDir }),
    ...(tls === undefined ? {} : { tls }),
    ...(m.controller?.insecureHttp === undefined ? {} : { insecureHttp: m.controller.insecureHttp }),
    ...(restore ? { restore } : {}),
    detachedRouter: m.router?.detached === true,
    keepRouterOnClose: m.router?.keepOnClose === true,
    ...(m.router?.engine === undefined ? {} : { routerEngine: m.router.engine }),
    // `file: -` is the router's stdout.
    ...(m.router?.accessLog === undefined ? {} : { routerAccessLog: { ...m.router.accessLog, ...(m.router.accessLog.file === '-' ? { file: null } : {}) } }),
    ...(m.router?.metrics === undefined ? {} : { routerMetrics: m.router.metrics }),
  });

  const closers = new CloseStack(logger);
  try {
    // 1. discovery answers (a bounded wait: an unreachable etcd must not hang the start).
    const where = describeDiscovery(m.discovery);
    const discovery = createDiscovery(discoveryConfig(m.discovery, plan.key, m.discovery.backend === 'etcd' ? await etcdCredentials(m.discovery, 'discovery') : undefined), { logger });
    closers.push(() => discovery.close());
    const timeoutMs = m.discovery.timeoutMs ?? BOOTSTRAP_DEFAULTS.discoveryTimeoutMs;
    const unavailable = (why: string, cause?: unknown) =>
      new UnavailableError(BootstrapErrorCodes.DISCOVERY_UNAVAILABLE, `discovery: ${where} ${why}; is it running, and are discovery.${m.discovery.backend === 'etcd' ? 'endpoints' : 'url'} right?`, cause === undefined ? {} : { cause });
    const registered = await within(
      discovery.instances(HOST_SERVICE).catch((err: unknown) => {
        throw unavailable(`does not answer (${(err as Error).message})`, err);
      }),
      timeoutMs,
      () => unavailable(`did not answer within ${timeoutMs} ms`),
    );
    step('discovery', `${where} ok, ${registered.length} host(s) registered`);

    // 2. the host agents (layer 0) are there.
    const hosts = min === 0 ? registered : await waitForHosts(discovery, min, waitMs, (message) => step('wait-hosts', message));
    if (min === 0) step('wait-hosts', `not waiting (waitHosts.min is 0), ${registered.length} up`);

    // 3. the controller's store: etcd next to discovery unless the manifest says otherwise.
    const storeSpec = m.controller?.store ?? (m.discovery.backend === 'etcd' ? { backend: 'etcd' as const } : { backend: 'memory' as const });
    let store: Store;
    if (storeSpec.backend === 'etcd') {
      // validateManifest made sure there are endpoints when discovery is not etcd.
      const endpoints = storeSpec.endpoints ?? (m.discovery.backend === 'etcd' ? m.discovery.endpoints : []);
      const prefix = storeSpec.prefix ?? `${m.discovery.backend === 'etcd' ? (m.discovery.prefix ?? BOOTSTRAP_DEFAULTS.etcdPrefix) : BOOTSTRAP_DEFAULTS.etcdPrefix}/controller/`;
      // The store's own credentials, else (on the discovery's etcd) the discovery's.
      const own = await etcdCredentials(storeSpec, 'controller.store');
      const storeCredentials = own ?? (storeSpec.endpoints === undefined && m.discovery.backend === 'etcd' ? await etcdCredentials(m.discovery, 'discovery') : undefined);
      store = new EtcdStore({ hosts: endpoints, prefix, ...(storeCredentials === undefined ? {} : { credentials: storeCredentials }) });
      closers.push(() => store.close());
      const apps = await within(store.listApps(), timeoutMs, () => new UnavailableError(BootstrapErrorCodes.NOT_READY, `store: etcd at ${endpoints.join(',')} did not answer within ${timeoutMs} ms`));
      step('store', `etcd at ${endpoints.join(',')} (prefix ${prefix}), ${apps.length} app(s)`);
    } else {
      store = new MemoryStore();
      closers.push(() => store.close());
      step('store', 'memory (apps, releases and routes are lost when it stops)');
    }

    // 4. layer 1.
    const runtime = await chooseRuntime(plan.build, plan.onProgress, plan.image);
    const platform = await launchPlatform({ ...plan, discovery, store }, runtime);
    closers.push(() => platform.close());
    step('ready', `controller ${platform.controllerUrl}${platform.controllerPin === null ? '' : ` (pin ${platform.controllerPin})`}, router ${platform.routerUrl}, git ${platform.gitHost}`);

    const handle: BootstrapHandle = {
      ...platform,
      hostIds: hosts.map((i) => i.meta.id ?? i.id),
      close: () => closers.close(),
      [Symbol.asyncDispose]: () => handle.close(),
    };
    return handle;
  } catch (err) {
    await closers.close();
    throw err;
  }
}

/** A file the manifest names, read; one that cannot be read names its field. */
function readManifestFile(path: string, field: string): Promise<string> {
  return readFile(path, 'utf8').catch((err: unknown) => {
    throw new BootstrapManifestError([{ field, message: `${field} cannot be read: ${(err as Error).message}` }], {});
  });
}

/** The manifest's `controller.tls` files, read. */
async function readTlsFiles(files: { cert: string; key: string }): Promise<TlsCredentials> {
  return { cert: await readManifestFile(files.cert, 'controller.tls.cert'), key: await readManifestFile(files.key, 'controller.tls.key') };
}

/** The manifest's etcd credentials (`<where>.tls` files read), undefined when it gives none. */
async function etcdCredentials(auth: ManifestEtcdAuth, where: string): Promise<EtcdCredentials | undefined> {
  const out: EtcdCredentials = {};
  for (const part of ['ca', 'cert', 'key'] as const) {
    const file = auth.tls?.[part];
    if (file === undefined) continue;
    out[part] = await readManifestFile(file, `${where}.tls.${part}`);
  }
  if (auth.username !== undefined) out.username = auth.username;
  if (auth.password !== undefined) out.password = auth.password;
  return Object.keys(out).length === 0 ? undefined : out;
}
