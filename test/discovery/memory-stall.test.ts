import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/common/clock.js';
import { MemoryRegistry } from '../../src/discovery/memory-backend.js';

describe('memory discovery on a stalled process', () => {
  it('does not expire registrations for the time the process itself was stalled, but still expires a silent owner', async () => {
    const clock = new ManualClock(Date.now());
    const registry = new MemoryRegistry({ clock, sweepIntervalMs: 100 });
    try {
      const stalled = registry.add({ service: 'stall-web', addr: '127.0.0.1:1', proto: 'http', meta: {}, ttlMs: 1000 });
      await clock.advance(150);
      await clock.stall(1500); // the whole process busy, longer than the TTL: the sweep runs late
      await clock.advance(300);
      expect(registry.list('stall-web').map((i) => i.id)).toEqual([stalled.id]);
      await clock.advance(1000); // no heartbeat for the TTL while the process runs: gone
      expect(registry.list('stall-web')).toEqual([]);
    } finally {
      registry.close();
    }
  });
});
