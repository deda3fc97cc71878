import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryDiscovery } from '../../src/discovery/memory-backend.js';
import { startHostAgent, type HostAgentHandle } from '../../src/host/start.js';
import { HostClient } from '../../src/host/client.js';
import { ProcessRuntime } from '../../src/host/process-runtime.js';
import { validateJobSpec } from '../../src/host/validate.js';
import { jobRequest, waitFor } from './agent-scenarios.js';
import { HOST_KEY } from './support.js';

describe('host agent HTTP API input handling', () => {
  let baseDir: string;
  let host: HostAgentHandle;
  let runtime: ProcessRuntime;
  const discovery = new MemoryDiscovery();

  beforeAll(async () => {
    baseDir = await mkdtemp(join(tmpdir(), 'flynn-ts-api-'));
    runtime = new ProcessRuntime({ baseDir });
    host = await startHostAgent({ key: HOST_KEY, id: 'api-test', advertiseAddr: '127.0.0.4', discovery, runtime, capacity: { memoryBytes: 512 * 1024 * 1024 } });
  });

  afterAll(async () => {
    await host.close();
    await runtime.close();
    await discovery.close();
    await rm(baseDir, { recursive: true, force: true });
  });

  async function call(
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    body?: string,
    authorization: string | null = `Bearer ${HOST_KEY}`,
  ): Promise<{ status: number; text: string; json: { code: string; message: string; detail?: { field?: string } } }> {
    const headers: Record<string, string> = body === undefined ? {} : { 'content-type': 'application/json' };
    if (authorization !== null) headers.authorization = authorization;
    const res = await request(host.url + path, { method, body, headers });
    const text = await res.body.text();
    return { status: res.statusCode, text, json: JSON.parse(text) as never };
  }

  it.each([
    ['no key', null, 'missing host key'],
    ['a wrong key', 'Bearer not-the-key', 'wrong host key'],
    ['a wrong Basic password', `Basic ${Buffer.from('user:nope').toString('base64')}`, 'wrong host key'],
  ])('answers every endpoint with %s with 401 and reveals nothing', async (_what, authorization, message) => {
    const secret = `secret-${Date.now()}`;
    const client = new HostClient({ url: host.url, key: HOST_KEY });
    const job = await client.createJob({ ...jobRequest('auth'), cmd: ['sleep', '30'], env: { SECRET: secret } });
    const endpoints: [method: 'GET' | 'POST' | 'DELETE', path: string, body?: string][] = [
      ['GET', '/jobs'],
      ['POST', '/jobs', JSON.stringify({ ...jobRequest('auth'), cmd: ['cat', '/etc/shadow'] })],
      ['GET', `/jobs/${job.id}`],
      ['GET', `/jobs/${job.id}/logs`],
      ['POST', `/jobs/${job.id}/signal`, JSON.stringify({ signal: 'SIGKILL' })],
      ['DELETE', `/jobs/${job.id}`],
      ['GET', '/events?since=0'],
      ['GET', '/status'],
      ['GET', '/nowhere'],
    ];
    try {
      for (const [method, path, body] of endpoints) {
        const res = await call(method, path, body, authorization);
        expect(res.status, `${method} ${path}`).toBe(401);
        expect(res.json).toMatchObject({ code: 'FLYNN_ERR_HOST_UNAUTHORIZED', message: expect.stringContaining(message) });
        expect(res.text).not.toContain(secret);
        expect(res.text).not.toContain(job.id);
      }
      // Nothing was started or stopped by the refused requests.
      const jobs = await client.listJobs();
      expect(jobs.filter((j) => j.app === job.app && j.state === 'up').map((j) => j.id)).toEqual([job.id]);
    } finally {
      await client.stopJob(job.id, { graceMs: 0 });
      await client.close();
    }
  });

  it('refuses to start without a key unless asked to serve unauthenticated', async () => {
    await expect(startHostAgent({ id: 'no-key', advertiseAddr: '127.0.0.4', discovery, runtime })).rejects.toMatchObject({ code: 'FLYNN_ERR_HOST_INVALID_CONFIG', detail: { field: 'key' } });
    await expect(startHostAgent({ id: 'no-key', advertiseAddr: '127.0.0.4', discovery, runtime, key: '' })).rejects.toMatchObject({ code: 'FLYNN_ERR_HOST_INVALID_CONFIG' });
    const open = await startHostAgent({ id: 'open', advertiseAddr: '127.0.0.4', discovery, runtime, insecureNoAuth: true });
    try {
      expect((await request(`${open.url}/status`)).statusCode).toBe(200);
    } finally {
      await open.close();
    }
  });

  it.each([
    ['a missing cmd', { id: 'x', app: 'a', release: 'r', type: 'web' }, 'cmd'],
    ['an empty cmd', { id: 'x', app: 'a', release: 'r', type: 'web', cmd: [] }, 'cmd'],
    ['a port out of range', { id: 'x', app: 'a', release: 'r', type: 'web', cmd: ['true'], ports: [{ port: 70000 }] }, 'ports.0.port'],
    ['a bad service name', { id: 'x', app: 'a', release: 'r', type: 'web', cmd: ['true'], ports: [{ port: 80, service: 'Bad Name' }] }, 'ports.0.service'],
    ['a non-string env value', { id: 'x', app: 'a', release: 'r', type: 'web', cmd: ['true'], env: { A: 1 } }, 'env.A'],
    ['a bad job id', { id: '../etc', app: 'a', release: 'r', type: 'web', cmd: ['true'] }, 'id'],
    ['a tiny memory limit', { id: 'x', app: 'a', release: 'r', type: 'web', cmd: ['true'], limits: { memoryBytes: 10 } }, 'limits.memoryBytes'],
    ['an unknown field', { id: 'x', app: 'a', release: 'r', type: 'web', cmd: ['true'], bogus: 1 }, undefined],
  ])('answers a job with %s with 400 naming the field', async (_what, body, field) => {
    const res = await call('POST', '/jobs', JSON.stringify(body));
    expect(res.status).toBe(400);
    expect(typeof res.json.code).toBe('string');
    if (field) expect(res.json.detail?.field).toBe(field);
  });

  it('refuses a job spec that asks for host access (privileged, mounts, host network, a user)', async () => {
    for (const [field, value] of [['privileged', true], ['mounts', [{ hostPath: '/', path: '/host' }]], ['hostNetwork', true], ['networkMode', 'host'], ['user', 'root'], ['capAdd', ['SYS_ADMIN']]] as const) {
      const res = await call('POST', '/jobs', JSON.stringify({ ...jobRequest('host-access'), [field]: value }));
      expect(res.status, field).toBe(400);
      expect(res.json).toMatchObject({ detail: { field } });
      // The library path (startHostAgent().agent.createJob) refuses it too, by name.
      expect(() => validateJobSpec({ ...jobRequest('host-access'), [field]: value })).toThrow(`${field}: a job cannot ask for host access`);
    }
  });

  it('refuses an artifact sha256 that is not 64 lowercase hex digits, over HTTP and through the library', async () => {
    for (const sha256 of ['AB'.repeat(32), 'ab', 42]) {
      const spec = { ...jobRequest('digest'), artifact: { url: 'http://127.0.0.1:9/slug.tgz', sha256 } };
      expect(await call('POST', '/jobs', JSON.stringify(spec)), String(sha256)).toMatchObject({ status: 400, json: { detail: { field: 'artifact.sha256' } } });
      expect(() => validateJobSpec(spec)).toThrow('artifact.sha256 must be 64 lowercase hex digits');
    }
    const ok = { url: 'http://127.0.0.1:9/slug.tgz', sha256: 'ab'.repeat(32) };
    expect(validateJobSpec({ ...jobRequest('digest'), artifact: ok }).artifact).toEqual(ok);
  });

  it('answers malformed JSON, unknown jobs, bad signals and bad query strings with 4xx JSON', async () => {
    expect((await call('POST', '/jobs', '{"id":')).status).toBe(400);
    expect(await call('GET', '/jobs/nope')).toMatchObject({ status: 404, json: { code: 'FLYNN_ERR_HOST_JOB_NOT_FOUND' } });
    expect((await call('DELETE', '/jobs/nope')).status).toBe(404);
    expect((await call('POST', '/jobs/nope/signal', JSON.stringify({ signal: 'SIGTERM' }))).status).toBe(404);
    expect((await call('GET', '/jobs/nope/logs')).status).toBe(404);
    expect((await call('GET', '/nowhere')).status).toBe(404);

    const client = new HostClient({ url: host.url, key: HOST_KEY });
    const job = await client.createJob(jobRequest('api', { cmd: ['node', '-e', 'setInterval(() => {}, 1000)'] }));
    expect(job.state).toBe('up');
    expect(await call('POST', `/jobs/${job.id}/signal`, JSON.stringify({ signal: 'SIGNOPE' }))).toMatchObject({ status: 400, json: { detail: { field: 'signal' } } });
    expect(await call('GET', `/jobs/${job.id}/logs?lines=abc`)).toMatchObject({ status: 400, json: { detail: { field: 'lines' } } });
    expect(await call('GET', `/jobs/${job.id}/logs?follow=maybe`)).toMatchObject({ status: 400, json: { detail: { field: 'follow' } } });
    expect(await call('POST', '/jobs', JSON.stringify(jobRequest('api', { id: job.id })))).toMatchObject({ status: 409, json: { code: 'FLYNN_ERR_HOST_JOB_EXISTS' } });
    expect(await call('POST', '/jobs', JSON.stringify(jobRequest('api', { limits: { memoryBytes: 1024 ** 3 } })))).toMatchObject({ status: 409, json: { code: 'FLYNN_ERR_HOST_NO_CAPACITY' } });
    await client.stopJob(job.id, { graceMs: 500 });
    expect(await call('POST', `/jobs/${job.id}/signal`, JSON.stringify({ signal: 'SIGHUP' }))).toMatchObject({ status: 409, json: { code: 'FLYNN_ERR_HOST_JOB_NOT_RUNNING' } });
    await client.close();
  });

  it('resumes the event stream after a Last-Event-Id', async () => {
    const client = new HostClient({ url: host.url, key: HOST_KEY });
    const job = await client.createJob(jobRequest('api', { cmd: ['node', '-e', 'setTimeout(() => {}, 200)'] }));
    const abort = new AbortController();
    const seen: string[] = [];
    for await (const e of client.events({ since: 0, signal: abort.signal })) {
      if (e.job.id !== job.id) continue;
      seen.push(e.job.state);
      if (e.job.state === 'down') abort.abort();
    }
    expect(seen).toEqual(['pending', 'starting', 'up', 'down']);
    await client.close();
  });

  it('deletes what an ended job left after retainEndedMs, and still answers for it from its kept history', async () => {
    const short = await startHostAgent({ key: HOST_KEY, id: 'api-retain', advertiseAddr: '127.0.0.4', discovery, runtime, retainEndedMs: 300 });
    const client = new HostClient({ url: short.url, key: HOST_KEY });
    try {
      const job = await client.createJob(jobRequest('api', { cmd: ['node', '-e', 'process.exit(2)'] }));
      await waitFor('the crash', async () => ((await client.getJob(job.id)).state === 'crashed' ? true : undefined));
      await waitFor("the job's files to be deleted", async () => ((await runtime.inspect('api-retain', job.id)) === undefined ? true : undefined));
      // The record of its end outlives its files (ended-jobs.ts keeps it on disk, bounded).
      expect(await client.getJob(job.id)).toMatchObject({ id: job.id, state: 'crashed', exit: { code: 2 } });
    } finally {
      await client.close();
      await short.close();
    }
  });
});
