import { describe, expect, it } from 'vitest';
import { MemoryRegistry } from '../../src/discovery/memory-backend.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('memory discovery on a stalled process', () => {
  it('does not expire registrations for the time the process itself was stalled, but still expires a silent owner', async () => {
    const registry = new MemoryRegistry();
    try {
      const stalled = registry.add({ service: 'stall-web', addr: '127.0.0.1:1', proto: 'http', meta: {}, ttlMs: 1000 });
      await sleep(150);
      const until = Date.now() + 1500; // the whole process busy, longer than the TTL
      while (Date.now() < until) {
        // spin
      }
      await sleep(300);
      expect(registry.list('stall-web').map((i) => i.id)).toEqual([stalled.id]);
      await sleep(1000); // no heartbeat for the TTL while the process runs: gone
      expect(registry.list('stall-web')).toEqual([]);
    } finally {
      registry.close();
    }
  });
});
