/**
 * Time from "create job" (POST /jobs) to "its port answers HTTP", for the docker and process
 * runtimes: 20 jobs each, one at a time, through a real agent and its HTTP API on 127.0.0.6.
 * Prints median, p90, min and max per runtime and the docker/process ratio. No asserts.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import { MemoryDiscovery } from '../../src/discovery/memory-backend.js';
import { startHostAgent } from '../../src/host/start.js';
import { HostClient } from '../../src/host/client.js';
import { DockerRuntime } from '../../src/host/docker-runtime.js';
import { ProcessRuntime } from '../../src/host/process-runtime.js';
import type { Runtime } from '../../src/host/runtime.js';
import { ensureRuntimeImage } from '../../src/host/runtime-image.js';
import { fetchWhenUp, HTTP_SERVER_CMD } from '../../src/host/testing/jobs.js';

const JOBS = 20;
const ADDR = '127.0.0.6';
const run = randomUUID().slice(0, 8);
const LABELS = { 'io.flynn-ts.bench': '1', 'io.flynn-ts.bench-run': run };

interface Figures {
  median: number;
  p90: number;
  min: number;
  max: number;
}

function figures(samples: number[]): Figures {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] as number;
  return { median: at(0.5), p90: at(0.9), min: s[0] as number, max: s.at(-1) as number };
}

async function measure(runtime: Runtime): Promise<Figures> {
  const discovery = new MemoryDiscovery();
  const key = randomBytes(16).toString('hex');
  const host = await startHostAgent({ id: `bench-${runtime.name}-${run}`, advertiseAddr: ADDR, discovery, runtime, stopGraceMs: 2000, key });
  const client = new HostClient({ url: host.url, key });
  const samples: number[] = [];
  try {
    for (let i = 0; i < JOBS; i++) {
      const t0 = performance.now();
      const job = await client.createJob({ id: `bench-${i}`, app: 'bench', release: 'r1', type: 'web', cmd: HTTP_SERVER_CMD, ports: [{ port: 8080, proto: 'tcp' }] });
      if (job.state !== 'up') throw new Error(`job ${job.id} is ${job.state}: ${job.error?.message}`);
      await fetchWhenUp(`http://${ADDR}:${job.boundPorts[0]?.hostPort}/`, 30_000);
      samples.push(performance.now() - t0);
      await client.stopJob(job.id);
    }
  } finally {
    await client.close();
    await host.close();
    await runtime.close();
    await discovery.close();
  }
  return figures(samples);
}

const ms = (n: number) => `${n.toFixed(0)} ms`;
const print = (name: string, f: Figures) => console.log(`${name.padEnd(8)} median ${ms(f.median)}  p90 ${ms(f.p90)}  min ${ms(f.min)}  max ${ms(f.max)}  (${JOBS} jobs, create → port answers)`);

const baseDir = await mkdtemp(join(tmpdir(), 'flynn-ts-bench-'));
const results: Record<string, Figures> = {};
try {
  results.process = await measure(new ProcessRuntime({ baseDir }));
  print('process', results.process);
  const docker = new Dockerode();
  const reachable = await docker.ping().then(() => true, () => false);
  if (reachable) {
    await ensureRuntimeImage({ docker });
    results.docker = await measure(new DockerRuntime({ docker, labels: LABELS }));
    print('docker', results.docker);
    console.log(`ratio    docker/process median ${(results.docker.median / results.process.median).toFixed(1)}x`);
  } else {
    console.log('docker   skipped: the Docker engine is not reachable');
  }
} finally {
  await rm(baseDir, { recursive: true, force: true });
  const docker = new Dockerode();
  const left = await docker.listContainers({ all: true, filters: { label: [`io.flynn-ts.bench-run=${run}`] } }).catch(() => []);
  await Promise.all(left.map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => {})));
}
