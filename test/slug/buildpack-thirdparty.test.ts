/**
 * Third-party buildpacks on the stack image: a shell buildpack written for Heroku's stack (bash
 * features, `curl` to a server, an `export` file for the next buildpack) is cloned from a local
 * git repository by its file:// URL and runs unchanged in `.buildpacks` before the bundled nodejs
 * pack. The build uses the host network so that curl reaches the test's server on 127.0.0.1.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSlug } from '../../src/slug/builder.js';
import { DockerBuildExecutor } from '../../src/slug/docker-executor.js';
import { needDocker } from '../support/services.js';
import { removeTestContainers, slugContents, sourceTar, startTestShelf, TEST_LABELS, type TestShelf } from './helpers.js';

const exec = promisify(execFile);
const docker = new Dockerode();

/** A Heroku-style buildpack that only runs under bash, with the usual tools of a stack. */
const COMPILE = `#!/usr/bin/env bash
set -euo pipefail
build_dir=$1 env_dir=$3
bp_dir=$(cd "$(dirname "\${BASH_SOURCE[0]}")/.." && pwd)
declare -a tools=(alpha beta)
declare -A version=([alpha]=1 [beta]=2)
echo "-----> Shell pack on bash \${BASH_VERSINFO[0]} (STACK=\${STACK:-none})"
[[ -f "$env_dir/TOOL_URL" ]] || { echo " !     TOOL_URL is not set" >&2; exit 1; }
curl -fsS "$(<"$env_dir/TOOL_URL")" -o "$build_dir/tool.txt"
joined="\${tools[*]}"
echo "       tools \${joined// /+}, beta v\${version[beta]}"
mapfile -t lines < "$build_dir/tool.txt"
echo "       fetched \${#lines[@]} line(s): \${lines[0]^^}"
echo "export SHELLPACK_GREETING='hello from the shell pack'" > "$bp_dir/export"
`;

if (await needDocker('third-party buildpacks')) {
  describe('a third-party shell buildpack from git, then nodejs (.buildpacks)', () => {
    let work: string;
    let shelf: TestShelf;
    let server: Server;
    let toolUrl: string;
    let packUrl: string;

    beforeAll(async () => {
      work = await mkdtemp(path.join(tmpdir(), 'flynn-thirdparty-'));
      server = createServer((req, res) => (req.url === '/tool.txt' ? res.end('tool from the local server\n') : res.writeHead(404).end()));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      toolUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/tool.txt`;
      const src = path.join(work, 'shellpack');
      await mkdir(path.join(src, 'bin'), { recursive: true });
      const bins = { detect: '#!/usr/bin/env bash\necho Shellpack\n', compile: COMPILE, release: '#!/usr/bin/env bash\necho "--- {}"\n' };
      for (const [name, body] of Object.entries(bins)) {
        await writeFile(path.join(src, 'bin', name), body);
        await chmod(path.join(src, 'bin', name), 0o755);
      }
      const git = (...args: string[]) => exec('git', ['-C', src, '-c', 'user.email=t@t', '-c', 'user.name=t', ...args]);
      await exec('git', ['init', '-q', '-b', 'main', src]);
      await git('add', '-A');
      await git('commit', '-qm', 'shell pack');
      await exec('git', ['clone', '-q', '--bare', src, path.join(work, 'shellpack.git')]);
      packUrl = `file://${path.join(work, 'shellpack.git')}#main`;
      shelf = await startTestShelf('127.0.0.1');
    }, 30_000);
    afterAll(async () => {
      server?.close();
      await shelf?.close();
      await removeTestContainers(docker);
      await rm(work, { recursive: true, force: true });
    });

    it('runs the bash pack unchanged on the stack, and its export reaches the nodejs build script', async () => {
      const pkg = { name: 'multi', version: '1.0.0', private: true, scripts: { build: 'node -e "require(\'fs\').writeFileSync(\'from-export.txt\', process.env.SHELLPACK_GREETING)"' } };
      const lines: string[] = [];
      const result = await buildSlug({
        source: await sourceTar('node-hello', { '.buildpacks': `${packUrl}\nnodejs\n`, 'package.json': JSON.stringify(pkg) }),
        app: 'multi-pack',
        env: { TOOL_URL: toolUrl },
        executor: new DockerBuildExecutor({ docker, image: 'flynn-ts/stack:latest', network: 'host', labels: TEST_LABELS }),
        shelf: shelf.client,
        cache: false,
        onOutput: (l) => lines.push(l),
      });
      expect(lines, lines.join('\n')).toContain(`-----> Fetching buildpack ${packUrl}`);
      expect(lines).toContain('-----> Shell pack on bash 5 (STACK=flynn-ts-12)');
      expect(lines).toContain('       tools alpha+beta, beta v2');
      expect(lines).toContain('       fetched 1 line(s): TOOL FROM THE LOCAL SERVER');
      expect(result.buildpacks).toEqual(['shellpack', 'nodejs']);
      expect(result.processTypes).toEqual({ web: 'node server.js' });
      const slug = await slugContents(shelf.client, result.slugPath);
      expect(slug.names).toEqual(expect.arrayContaining(['tool.txt', 'from-export.txt']));
      expect(slug.text).toContain('hello from the shell pack');
    }, 60_000);
  });
}
