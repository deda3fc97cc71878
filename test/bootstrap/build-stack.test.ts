// How a platform picks the image and network of its builds: the stack image when it is built, a
// named image only when it exists, isolated builds on request, proxies passed on.
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { BootstrapErrorCodes, BootstrapInputError, parseManifest, PLATFORM_DEFAULTS, startCluster } from '../../src/bootstrap/index.js';
import { chooseRuntime, planPlatform } from '../../src/bootstrap/platform.js';
import { TERMINAL_STATES } from '../../src/host/types.js';
import { needStackImage } from '../host/stack-support.js';
import { removeTestContainers, TEST_LABELS } from '../host/support.js';
import { until } from './deploy-scenario.js';

const ETCD = 'discovery:\n  backend: etcd\n  endpoints: [http://127.0.0.1:2379]\n';

describe('build network and image options', () => {
  it('gives builds the bridge network by default, and takes none or host', () => {
    expect(PLATFORM_DEFAULTS.buildNetwork).toBe('bridge');
    expect(planPlatform({}).buildNetwork).toBe('bridge');
    expect(planPlatform({ buildNetwork: 'none' }).buildNetwork).toBe('none');
    expect(planPlatform({ buildNetwork: 'host' }).buildNetwork).toBe('host');
    expect(() => planPlatform({ buildNetwork: 'wifi' as never })).toThrow(BootstrapInputError);
    expect(() => planPlatform({ buildNetwork: 'wifi' as never })).toThrow('buildNetwork must be none, bridge, host, got "wifi"');
  });

  it('passes proxy variables on to builds, leaving out the empty ones', () => {
    expect(planPlatform({ buildEnv: { HTTPS_PROXY: 'http://proxy:3128', NO_PROXY: '' } }).buildEnv).toEqual({ HTTPS_PROXY: 'http://proxy:3128' });
  });

  it('takes buildNetwork, image and buildEnv in the bootstrap manifest', () => {
    const m = parseManifest(`${ETCD}buildNetwork: none\nimage: my/stack:1\nbuildEnv:\n  HTTPS_PROXY: \${HTTPS_PROXY:-}\n`, { env: {} });
    expect(m).toMatchObject({ buildNetwork: 'none', image: 'my/stack:1', buildEnv: { HTTPS_PROXY: '' } });
    expect(() => parseManifest(`${ETCD}buildNetwork: wifi\n`, { env: {} })).toThrow('buildNetwork must be none, bridge or host, got "wifi"');
  });

  it('runs process builds with STACK=host', async () => {
    expect(await chooseRuntime('process', () => {})).toEqual({ runtime: 'process', stack: 'host' });
  });
});

const stack = await needStackImage('platform build image');

describe.runIf(stack)('build image choice with Docker', () => {
  const run = randomUUID().slice(0, 6);
  afterAll(() => removeTestContainers(run));

  it('starts a cluster whose builds and jobs run on the stack, and a job sees $STACK', async () => {
    await using cluster = await startCluster({ runtime: 'docker', hostAddrs: ['127.0.0.5'], labels: TEST_LABELS(run), ports: { controller: 0, router: 0, git: 0, shelf: 0 } });
    expect({ image: cluster.image, stack: cluster.stack }).toEqual({ image: stack!.name, stack: stack!.stack });
    const agent = cluster.hosts[0]!.agent;
    // What formations and one-off jobs name when no image is configured: the host's default, here the stack (it has bash).
    const job = await agent.createJob({ id: `stack-${run}`, app: `stack${run}`, release: 'r1', type: 'run', image: 'flynn-ts/runtime:latest', cmd: ['bash', '-c', 'echo "STACK=$STACK"'] });
    await until('the job to end', async () => {
      const state = agent.listJobs().find((j) => j.id === job.id)?.state;
      return state !== undefined && TERMINAL_STATES.has(state) ? true : undefined;
    });
    const lines: string[] = [];
    for await (const line of agent.logs(job.id)) lines.push(line.line);
    expect(lines).toContain(`STACK=${stack!.stack}`);
  }, 60_000);

  it('uses the stack image when it is built, by its versioned name, and says so', async () => {
    const lines: string[] = [];
    expect(await chooseRuntime('docker', (l) => lines.push(l))).toEqual({ runtime: 'docker', image: stack!.name, stack: stack!.stack });
    expect(lines).toContain(`builds run on the stack image ${stack!.name} (STACK=${stack!.stack})`);
  });

  it('uses a named image with its own STACK, and refuses one the engine does not have', async () => {
    expect(await chooseRuntime('docker', () => {}, 'flynn-ts/stack:latest')).toEqual({ runtime: 'docker', image: 'flynn-ts/stack:latest', stack: stack!.stack });
    const err = await chooseRuntime('auto', () => {}, 'flynn-ts/no-such-image:1').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: BootstrapErrorCodes.INVALID_OPTIONS, detail: { field: 'image' } });
    expect((err as Error).message).toContain('image flynn-ts/no-such-image:1 is not in the Docker engine');
  });
});
