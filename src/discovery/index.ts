/**
 * Service discovery (Flynn's discoverd): register instances with a TTL lease kept alive by
 * heartbeats, list and watch services, one leader per service. Backends: `memory` (one process),
 * `etcd` (etcd v3) and `http` (a discovery server, {@link startDiscoveryServer}).
 *
 * ```ts
 * import { createDiscovery } from 'flynn-ts/discovery';
 * const discovery = createDiscovery({ backend: 'etcd', endpoints: ['http://127.0.0.1:2379'] });
 * const reg = await discovery.register({ service: 'myapp-web', addr: '127.0.0.1:8080' });
 * for await (const event of discovery.watch('myapp-web')) console.log(event.type);
 * ```
 * @module
 */
export type { Discovery, Registration, ServiceWatch, WatchOptions } from './discovery.js';
export type { Instance, RegisterOptions, RegisterResponse, ServiceEvent } from './types.js';
export { DISCOVERY_DEFAULTS } from './types.js';
export { createDiscovery } from './create.js';
export type { DiscoveryConfig, CreateDiscoveryOptions } from './create.js';
export { campaign } from './election.js';
export type { Leadership, CampaignOptions } from './election.js';
export { MemoryDiscovery, MemoryRegistry } from './memory-backend.js';
export type { MemoryDiscoveryOptions } from './memory-backend.js';
export { EtcdDiscovery, ETCD_DISCOVERY_DEFAULTS } from './etcd-backend.js';
export type { EtcdDiscoveryOptions } from './etcd-backend.js';
export type { EtcdCredentials } from './etcd-credentials.js';
export { HttpDiscovery, HTTP_DISCOVERY_DEFAULTS } from './http-backend.js';
export type { HttpDiscoveryOptions } from './http-backend.js';
export { startDiscoveryServer, DISCOVERY_SERVER_DEFAULTS } from './server.js';
export type { DiscoveryServer, DiscoveryServerOptions } from './server.js';
export { ServiceView } from './service-view.js';
export { DiscoveryErrorCodes, DiscoveryInputError, InstanceNotFoundError, DiscoveryUnavailableError, DiscoveryUnauthorizedError } from './errors.js';
export { validateService, validateAddr } from './validate.js';
