import type { Discovery } from './discovery.js';
import { MemoryDiscovery, type MemoryRegistry } from './memory-backend.js';

/** Which discovery backend to use, and its settings. */
export type DiscoveryConfig = {
  backend: 'memory';
  /** Share one in-process registry between handles. */
  registry?: MemoryRegistry;
};

/** Build a {@link Discovery} from configuration: the one place a backend is chosen. */
export function createDiscovery(config: DiscoveryConfig): Discovery {
  switch (config.backend) {
    case 'memory':
      return new MemoryDiscovery(config.registry ? { registry: config.registry } : {});
  }
}
