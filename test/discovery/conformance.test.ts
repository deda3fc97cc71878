import { randomBytes } from 'node:crypto';
import { Etcd3 } from 'etcd3';
import { ManualClock } from '../../src/common/clock.js';
import { describe } from 'vitest';
import type { Discovery } from '../../src/discovery/discovery.js';
import { EtcdDiscovery } from '../../src/discovery/etcd-backend.js';
import { HttpDiscovery } from '../../src/discovery/http-backend.js';
import { MemoryDiscovery, MemoryRegistry } from '../../src/discovery/memory-backend.js';
import { startDiscoveryServer } from '../../src/discovery/server.js';
import { describeDiscoveryConformance } from '../../src/discovery/testing/conformance.js';
import { validateRegistration } from '../../src/discovery/validate.js';
import { etcdEndpoints, needEtcd } from '../support/services.js';

describeDiscoveryConformance('memory', async () => {
  // Leases, heartbeats and the sweep on a clock the suite moves: no waiting for a TTL.
  const clock = new ManualClock(Date.now());
  const registry = new MemoryRegistry({ clock });
  return {
    connect: () => new MemoryDiscovery({ registry }),
    // One process: a dead owner is a lease in the registry that nobody renews.
    registerAbandoned: async (options) => registry.add(validateRegistration(options)),
    advance: (ms) => clock.advance(ms),
    close: async () => registry.close(),
  };
});

describe.runIf(await needEtcd('discovery conformance on etcd'))('etcd backend', () => {
  const prefix = `/flynn-ts-test/conformance-${randomBytes(4).toString('hex')}`;
  describeDiscoveryConformance('etcd', async () => ({
    connect: () => new EtcdDiscovery({ endpoints: etcdEndpoints, prefix }),
    config: { backend: 'etcd', endpoints: etcdEndpoints, prefix },
    close: async () => {
      const client = new Etcd3({ hosts: etcdEndpoints });
      await client.delete().prefix(prefix + '/').exec();
      client.close();
    },
  }));

  // The path a job in a container takes: http client → discovery server → etcd.
  describeDiscoveryConformance('http (server on etcd)', async () => {
    return httpOver(new EtcdDiscovery({ endpoints: etcdEndpoints, prefix: `${prefix}-behind-http` }), async () => {
      const client = new Etcd3({ hosts: etcdEndpoints });
      await client.delete().prefix(`${prefix}-behind-http/`).exec();
      client.close();
    });
  });
});

describeDiscoveryConformance('http (server on memory)', () => httpOver(new MemoryDiscovery()));

/** The HTTP backend against a discovery server on `backend`; `cleanup` runs after both are closed. */
async function httpOver(backend: Discovery, cleanup: () => Promise<void> = async () => {}) {
  const server = await startDiscoveryServer({ discovery: backend, host: '127.0.0.1', port: 0 });
  return {
    connect: () => new HttpDiscovery({ url: server.url }),
    config: { backend: 'http' as const, url: server.url },
    close: async () => {
      await server.close();
      await backend.close();
      await cleanup();
    },
  };
}
