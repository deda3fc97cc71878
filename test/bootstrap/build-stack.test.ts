// How a platform picks the image and network of its builds: the stack image when it is built, a
// named image only when it exists, isolated builds on request, proxies passed on.
import { describe, expect, it } from 'vitest';
import { BootstrapErrorCodes, BootstrapInputError, parseManifest, PLATFORM_DEFAULTS } from '../../src/bootstrap/index.js';
import { chooseRuntime, planPlatform } from '../../src/bootstrap/platform.js';
import { needStackImage } from '../host/stack-support.js';

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
