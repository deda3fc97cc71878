import Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRuntimeImage, ensureRuntimeImage, runtimeImageExists, type RuntimeImage } from '../../src/host/runtime-image.js';

const docker = new Dockerode();
const LABELS = { 'io.flynn-ts.test': '1' };
// A repo of our own, so concurrent runs and other suites keep using the shared runtime tags undisturbed.
const NAME = `flynn-ts/runtime-test-${process.pid}:build`;

const noAnswer = new Promise((_, reject) => setTimeout(() => reject(new Error('no answer in 5 s')), 5_000).unref());
const dockerProblem = await Promise.race([docker.ping(), noAnswer]).then(
  () => undefined,
  (err: Error) => err.message,
);
const inCI = process.env.CI === 'true';
if (dockerProblem && !inCI) console.warn(`runtime-image suite skipped: Docker is not reachable (${dockerProblem})`);

describe.runIf(!dockerProblem || inCI)('runtime image', () => {
  const created: Dockerode.Container[] = [];
  let image: RuntimeImage;

  beforeAll(async () => {
    if (dockerProblem) throw new Error(`CI needs a Docker engine, and it is not reachable: ${dockerProblem}`);
    const started = performance.now();
    image = await buildRuntimeImage({ docker, name: NAME });
    console.log(`built ${image.name}: ${(image.sizeBytes / 1e6).toFixed(1)} MB in ${Math.round(performance.now() - started)} ms`);
  });

  afterAll(async () => {
    await Promise.all(created.map((c) => c.remove({ force: true }).catch(() => {})));
    for (const tag of [NAME, NAME.replace(/:build$/, ':latest')]) await docker.getImage(tag).remove().catch(() => {});
  });

  async function create(spec: Omit<Dockerode.ContainerCreateOptions, 'Image' | 'Labels'>): Promise<Dockerode.Container> {
    const container = await docker.createContainer({ ...spec, Image: image.name, Labels: LABELS });
    created.push(container);
    return container;
  }

  /** Run `cmd` to completion with no network and return its exit code and output. */
  async function run(cmd: string[], user?: string): Promise<{ code: number; stdout: string; stderr: string }> {
    const container = await create({ Cmd: cmd, User: user ?? '', HostConfig: { NetworkMode: 'none' } });
    await container.start();
    const { StatusCode } = await container.wait();
    return { code: StatusCode, ...demux(await container.logs({ stdout: true, stderr: true })) };
  }

  it('builds an image labelled as the runtime, tagged with its name and <repo>:latest', async () => {
    const info = await docker.getImage(image.id).inspect();
    expect(info.RepoTags).toEqual(expect.arrayContaining([NAME, NAME.replace(/:build$/, ':latest')]));
    expect(info.Config.Labels).toMatchObject({ 'io.flynn-ts.image': 'runtime' });
    expect(info.Config.WorkingDir).toBe('/app');
    expect(image.sizeBytes).toBeLessThan(150e6);
  });

  it('is reused by ensureRuntimeImage instead of being rebuilt', async () => {
    expect(await runtimeImageExists(docker, NAME)).toBe(true);
    expect(await runtimeImageExists(docker, `${NAME}-missing`)).toBe(false);
    expect((await ensureRuntimeImage({ docker, name: NAME })).id).toBe(image.id);
  });

  it("runs the host's node", async () => {
    const result = await run(['node', '-e', 'console.log(process.version)']);
    expect(result).toMatchObject({ code: 0, stdout: `${process.version}\n` });
  });

  it('ships busybox applets on the PATH and at their canonical paths', async () => {
    const script = [
      'set -e',
      'echo hi > /tmp/f',
      'tar -czf /tmp/f.tgz -C /tmp f',
      'tar -tzf /tmp/f.tgz',
      'gzip -dc /tmp/f.tgz | tar -xO',
      'wget --help >/dev/null 2>&1',
      'mkdir -p /tmp/d && ls /tmp/d && sleep 0',
      '/usr/bin/env node -e "console.log(1 + 1)"',
    ].join('\n');
    expect(await run(['sh', '-c', script])).toMatchObject({ code: 0, stdout: 'f\nhi\n2\n' });
  });

  it('has an unprivileged app user (uid 1000) who owns /app and can write /tmp', async () => {
    const result = await run(['sh', '-c', 'id -u; id -un; touch /app/x /tmp/x; stat -c %U /app'], 'app');
    expect(result).toMatchObject({ code: 0, stdout: '1000\napp\napp\n' });
  });

  it('serves HTTP from node on a port published to 127.0.0.1', async () => {
    const server = await create({
      User: 'app',
      Cmd: ['node', '-e', "require('http').createServer((req, res) => res.end('hello from ' + process.getuid())).listen(8080)"],
      ExposedPorts: { '8080/tcp': {} },
      HostConfig: { PortBindings: { '8080/tcp': [{ HostIp: '127.0.0.1', HostPort: '0' }] } },
    });
    await server.start();
    const binding = (await server.inspect()).NetworkSettings.Ports['8080/tcp']?.[0];
    expect(binding?.HostIp).toBe('127.0.0.1');
    const url = `http://127.0.0.1:${binding?.HostPort}/`;
    // The port is mapped before node listens; until then the proxy resets the connection.
    const deadline = Date.now() + 15_000;
    let body: string | undefined;
    while (body === undefined) {
      try {
        body = await (await fetch(url, { signal: AbortSignal.timeout(2_000) })).text();
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
    expect(body).toBe('hello from 1000');
  });

  it('fails with a typed error, and builds nothing, when busybox is missing', async () => {
    const name = `${NAME}-nobusybox`;
    await expect(buildRuntimeImage({ docker, name, busyboxPath: '/nonexistent/busybox' })).rejects.toMatchObject({
      code: 'FLYNN_ERR_HOST_IMAGE_BUILD',
      message: expect.stringContaining('/nonexistent/busybox'),
    });
    expect(await runtimeImageExists(docker, name)).toBe(false);
  });
});

describe('runtime image without Docker', () => {
  it('reports an unreachable engine as a retryable FLYNN_ERR_HOST_DOCKER_UNAVAILABLE', async () => {
    const nowhere = new Dockerode({ socketPath: '/nonexistent/docker.sock' });
    await expect(ensureRuntimeImage({ docker: nowhere })).rejects.toMatchObject({
      code: 'FLYNN_ERR_HOST_DOCKER_UNAVAILABLE',
      retryable: true,
    });
  });
});

/** Split a non-TTY log buffer into its stdout and stderr (8-byte frame headers: stream, 0, 0, 0, length). */
function demux(buf: Buffer): { stdout: string; stderr: string } {
  const out = { stdout: '', stderr: '' };
  for (let i = 0; i + 8 <= buf.length; ) {
    const length = buf.readUInt32BE(i + 4);
    const chunk = buf.subarray(i + 8, i + 8 + length).toString();
    if (buf[i] === 2) out.stderr += chunk;
    else out.stdout += chunk;
    i += 8 + length;
  }
  return out;
}
