/**
 * Service discovery (Flynn's discoverd): register instances with a TTL lease kept alive by
 * heartbeats, list and watch services, one leader per service.
 *
 * ```ts
 * import { createDiscovery } from 'flynn-ts/discovery';
 * const discovery = createDiscovery({ backend: 'memory' });
 * const reg = await discovery.register({ service: 'myapp-web', addr: '127.0.0.1:8080' });
 * for await (const event of discovery.watch('myapp-web')) console.log(event.type);
 * ```
 * @module
 */
export type { Discovery, Registration, ServiceWatch, WatchOptions } from './discovery.js';
export type { Instance, RegisterOptions, ServiceEvent } from './types.js';
export { DISCOVERY_DEFAULTS } from './types.js';
export { createDiscovery } from './create.js';
export { campaign } from './election.js';
export type { Leadership, CampaignOptions } from './election.js';
export type { DiscoveryConfig } from './create.js';
export { MemoryDiscovery, MemoryRegistry } from './memory-backend.js';
export type { MemoryDiscoveryOptions } from './memory-backend.js';
export { DiscoveryErrorCodes, DiscoveryInputError, InstanceNotFoundError, DiscoveryUnavailableError } from './errors.js';
export { validateService, validateAddr } from './validate.js';
