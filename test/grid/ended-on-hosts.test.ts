/**
 * The ended jobs a host keeps, as the controller lists them (`flynn ps --all`): a job that failed
 * to start says why; one that ran and crashed shows its exit, not a start failure.
 */
import { describe, expect, it } from 'vitest';
import { endedOnHost } from '../../src/grid/ended-on-hosts.js';
import type { HostClients } from '../../src/grid/host-clients.js';
import type { Job as HostJob } from '../../src/host/types.js';

const ended = (id: string, more: Partial<HostJob>): HostJob =>
  ({ id, hostId: 'h1', app: 'a', release: 'r1', type: 'web', state: 'crashed', limits: {}, boundPorts: [], createdAt: '2026-12-05T19:00:00.000Z', updatedAt: '2026-12-05T19:00:01.000Z', ...more }) as HostJob;

describe('ended jobs listed from a host', () => {
  it('keep the error of a job that failed to start, and not the one a crashed job records', async () => {
    const jobs = [
      ended('crashed', { state: 'crashed', exit: { code: 1, reason: 'exit' }, error: { code: 'FLYNN_ERR_HOST_JOB_CRASHED', message: 'job crashed exited with code 1' } }),
      ended('failed', { state: 'failed', error: { code: 'FLYNN_ERR_HOST_SLUG', message: 'the slug is damaged' } }),
    ];
    const hosts = { get: () => ({ listEndedJobs: async () => jobs }) } as unknown as HostClients;
    const listed = (await endedOnHost(hosts, 'h1')).map((e) => e.listed);
    expect(listed.find((j) => j.id === 'crashed')).toMatchObject({ state: 'crashed', exit: { code: 1, reason: 'exit' } });
    expect(listed.find((j) => j.id === 'crashed')?.error).toBeUndefined();
    expect(listed.find((j) => j.id === 'failed')).toMatchObject({ state: 'failed', error: 'the slug is damaged' });
  });
});
