import Dockerode from 'dockerode';
import { afterAll, describe, expect, it } from 'vitest';
import { DockerRuntime } from '../../src/host/docker-runtime.js';
import type { LogLine } from '../../src/host/types.js';
import { debianSources, parseDeb822Sources, parseOneLineSources, parseOsRelease } from '../../src/host/apt-sources.js';
import { buildStackImage, ensureStackImage } from '../../src/host/stack-image.js';
import { needStackImage } from './stack-support.js';
import { removeTestContainers, TEST_LABELS } from './support.js';

const RUN = `stack-${process.pid}`;

describe('apt sources for the stack', () => {
  const deb822 = [
    'Types: deb',
    '# http://snapshot.example/archive/debian/20250520T000000Z',
    'URIs: http://mirror.example/debian',
    'Suites: bookworm bookworm-updates',
    'Components: main',
    'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg',
    '',
    'Types: deb deb-src',
    'URIs: http://security.example/debian-security',
    'Suites: bookworm-security',
    'Components: main',
    '  contrib',
    '',
    'Types: deb',
    'URIs: https://deb.nodesource.com/node_20.x',
    'Suites: nodistro',
    'Components: main',
    '',
    'Enabled: no',
    'Types: deb',
    'URIs: http://disabled.example/debian',
    'Suites: bookworm',
    'Components: main',
  ].join('\n');

  it('reads deb822 stanzas (several suites, continuation lines, Enabled: no) and keeps the release, -updates and -security only', () => {
    const all = parseDeb822Sources(deb822);
    expect(all.filter((s) => s.type === 'deb').map((s) => `${s.uri} ${s.suite} ${s.components.join(',')}`)).toEqual([
      'http://mirror.example/debian bookworm main',
      'http://mirror.example/debian bookworm-updates main',
      'http://security.example/debian-security bookworm-security main,contrib',
      'https://deb.nodesource.com/node_20.x nodistro main',
    ]);
    expect(debianSources(all, 'bookworm').map((s) => s.suite)).toEqual(['bookworm', 'bookworm-updates', 'bookworm-security']);
  });

  it('reads one-line entries with options and comments, leaving out deb-src, backports and third-party suites', () => {
    const all = parseOneLineSources([
      '# comment',
      'deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main non-free-firmware',
      'deb-src http://mirror.example/debian bookworm main',
      'deb http://mirror.example/debian bookworm-backports main',
      'deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main',
      'deb http://mirror.example/debian-security bookworm-security main # trailing',
    ].join('\n'));
    expect(debianSources(all, 'bookworm').map((s) => `${s.uri} ${s.suite} ${s.components.join(',')}`)).toEqual([
      'http://mirror.example/debian bookworm main,non-free-firmware',
      'http://mirror.example/debian-security bookworm-security main',
    ]);
  });

  it('names the release from os-release', () => {
    expect(parseOsRelease('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n')).toEqual({ versionId: '12', codename: 'bookworm' });
  });

  it('says in one line how to install mmdebstrap when it is missing', async () => {
    const err = await buildStackImage({ name: 'flynn-ts/stack-test:never', mmdebstrap: '/nonexistent/mmdebstrap' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'FLYNN_ERR_HOST_IMAGE_TOOL_MISSING' });
    expect((err as Error).message).toMatch(/^\/nonexistent\/mmdebstrap is not installed: .*apt-get install mmdebstrap/);
  });
});

const stack = await needStackImage('stack image');

describe.runIf(stack)('stack image', () => {
  const docker = new Dockerode();
  afterAll(() => removeTestContainers(RUN));

  async function run(cmd: string, user = ''): Promise<{ code: number; out: string }> {
    const container = await docker.createContainer({ Image: stack!.name, Cmd: ['bash', '-c', cmd], User: user, Labels: TEST_LABELS(RUN), HostConfig: { NetworkMode: 'none' } });
    try {
      await container.start();
      const { StatusCode } = (await container.wait()) as { StatusCode: number };
      const raw = await container.logs({ stdout: true, stderr: true });
      // Docker's multiplexed log frames: an 8-byte header per chunk.
      let out = '';
      for (let i = 0; i + 8 <= raw.length; ) {
        const size = raw.readUInt32BE(i + 4);
        out += raw.subarray(i + 8, i + 8 + size).toString();
        i += 8 + size;
      }
      return { code: StatusCode, out };
    } finally {
      await container.remove({ force: true }).catch(() => {});
    }
  }

  it('is found again by ensureStackImage instead of being rebuilt', async () => {
    const lines: string[] = [];
    const again = await ensureStackImage({ docker, onProgress: (l) => lines.push(l) });
    expect(again.id).toBe(stack!.id);
    expect(lines.join('\n')).toContain('already present');
    const info = await docker.getImage(stack!.name).inspect();
    expect(info.RepoTags).toEqual(expect.arrayContaining([stack!.name, 'flynn-ts/stack:latest']));
    expect(info.Config.Labels).toMatchObject({ 'io.flynn-ts.image': 'stack', 'io.flynn-ts.stack': stack!.stack });
  });

  it('has bash, python3, g++, make, git, curl, node, npm, npx and corepack on PATH, $STACK and a UTF-8 locale', async () => {
    const { code, out } = await run('for c in bash python3 g++ make git curl tar gzip node npm npx corepack yarn pnpm; do command -v $c >/dev/null || echo "missing $c"; done; echo "STACK=$STACK LANG=$LANG"; node -e "console.log(process.version)"; npm --version; locale -a');
    expect(code).toBe(0);
    expect(out).not.toContain('missing');
    expect(stack!.stack).toMatch(/^flynn-ts-\w+$/);
    expect(out).toContain(`STACK=${stack!.stack} LANG=C.UTF-8`);
    expect(out).toContain(process.version);
    expect(out).toMatch(/C\.utf8/);
  });

  it('has the unprivileged app user (uid 1000) owning /app, and /tmp writable by all', async () => {
    const { code, out } = await run('id -u; echo $HOME; touch /app/x /tmp/y && stat -c %a /tmp', 'app');
    expect(code).toBe(0);
    expect(out.split('\n').slice(0, 3)).toEqual(['1000', '/app', '1777']);
  });

  it('compiles a C++ file with g++ (native modules build here)', async () => {
    const { code, out } = await run(`cd /tmp && printf '#include <iostream>\\nint main(){std::cout<<"native ok"<<std::endl;}\\n' > a.cc && g++ -O0 a.cc -o a && ./a`);
    expect({ code, out: out.trim() }).toEqual({ code: 0, out: 'native ok' });
  });

  it('is the default image of the Docker runtime, whose jobs see $STACK', async () => {
    const runtime = new DockerRuntime({ labels: TEST_LABELS(RUN) });
    try {
      const id = `j-stack-${process.pid}`;
      const spec = { hostId: `h-${RUN}`, bindAddr: '127.0.0.2', ports: [], job: { id, app: 'stack', release: 'r1', type: 'web', cmd: ['bash', '-c', 'echo "stack=$STACK ca=$NODE_EXTRA_CA_CERTS"'], env: {}, ports: [], limits: {}, meta: {} } };
      await runtime.start(spec);
      const lines: LogLine[] = [];
      for await (const line of runtime.logs(spec.hostId, id, { follow: true })) lines.push(line);
      expect(lines.map((l) => l.line).join('\n')).toContain(`stack=${stack!.stack} ca=/etc/ssl/certs/ca-certificates.crt`);
      await runtime.remove(spec.hostId, id);
    } finally {
      await runtime.close();
    }
  });
});
