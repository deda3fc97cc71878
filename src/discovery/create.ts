import type { Logger } from '../common/logger.js';
import type { Discovery } from './discovery.js';
import { DiscoveryErrorCodes, DiscoveryInputError } from './errors.js';
import { EtcdDiscovery } from './etcd-backend.js';
import type { EtcdCredentials } from './etcd-credentials.js';
import { HttpDiscovery } from './http-backend.js';
import { MemoryDiscovery, type MemoryRegistry } from './memory-backend.js';

/** Which discovery backend to use, and its settings. Plain data, so it can travel to a child process (except `registry`). */
export type DiscoveryConfig =
  | {
      backend: 'memory';
      /** Share one in-process registry between handles. */
      registry?: MemoryRegistry;
    }
  | {
      backend: 'etcd';
      /** etcd v3 endpoints, e.g. `['http://127.0.0.1:2379']`. */
      endpoints: string[];
      /** Key prefix; default `/flynn-ts`. */
      prefix?: string;
      /** TLS and/or user/password for etcd. */
      credentials?: EtcdCredentials;
    }
  | {
      backend: 'http';
      /** Base URL of a discovery server (`startDiscoveryServer`), e.g. `http://127.0.0.1:1111`. */
      url: string;
      /** The server's key, when it has one. */
      key?: string;
    };

export interface CreateDiscoveryOptions {
  /** Default silent. */
  logger?: Logger;
}

/** Build a {@link Discovery} from configuration: the one place a backend is chosen. */
export function createDiscovery(config: DiscoveryConfig, options: CreateDiscoveryOptions = {}): Discovery {
  const logger = options.logger ? { logger: options.logger } : {};
  switch (config?.backend) {
    case 'memory':
      return new MemoryDiscovery(config.registry ? { registry: config.registry } : {});
    case 'etcd':
      return new EtcdDiscovery({ endpoints: config.endpoints, ...(config.prefix === undefined ? {} : { prefix: config.prefix }), ...(config.credentials === undefined ? {} : { credentials: config.credentials }), ...logger });
    case 'http':
      return new HttpDiscovery({ url: config.url, ...(config.key === undefined ? {} : { key: config.key }), ...logger });
    default:
      throw new DiscoveryInputError(
        DiscoveryErrorCodes.INVALID_CONFIG,
        `unknown discovery backend ${JSON.stringify((config as { backend?: unknown } | undefined)?.backend)}: expected memory, etcd or http`,
        { field: 'backend' },
      );
  }
}
