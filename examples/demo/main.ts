/**
 * The talk's demo, unattended (`npm run demo`): start a cluster, create `express-demo`, `git push` it,
 * curl it through the router, add a route, scale to 3 and show answers from 3 jobs, `ps`, `log`,
 * `run echo hi`, remove the route, stop everything. The `flynn` commands run through the real CLI
 * (`runCli`) against a throwaway config; `git push` is the real git client over SSH with a key
 * made for the demo.
 *
 *   npx tsx examples/demo/main.ts [--runtime auto|docker|process] [--image IMAGE] [--keep]
 */
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { serverAddArgs, startCluster } from '../../src/bootstrap/index.js';
import { runCli } from '../../src/cli/index.js';
import { generatePrivateKey, publicKeyLine } from '../../src/git/index.js';
import { proxyEnv } from '../shared/build-env.js';
import { parseCli } from '../shared/cli-args.js';

const exec = promisify(execFile);
const cli = parseCli({
  name: 'demo',
  usage: 'npm run demo -- [flags]   (or: node --import tsx examples/demo/main.ts [flags])',
  summary: 'The talk demo, unattended: start a cluster, create express-demo, git push it, curl it, add a route,\nscale to 3, ps, log, run, remove the route, stop everything.',
  flags: {
    runtime: { type: 'string', value: 'auto|docker|process', env: 'FLYNN_RUNTIME', default: 'auto', help: 'where jobs and builds run' },
    image: { type: 'string', value: 'IMAGE', env: 'FLYNN_IMAGE', help: 'image builds and jobs run in (default: the stack image when built, else the runtime image)' },
    keep: { type: 'boolean', help: 'leave the cluster running at the end (Ctrl-C stops it)' },
  },
});
const values = { ...cli.values, runtime: cli.oneOf('runtime', ['auto', 'docker', 'process'] as const) };

const APP = 'express-demo';
const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const say = (s: string) => console.log(`\n${bold(`### ${s}`)}`);

function get(url: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { host }, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

const dir = await mkdtemp(join(tmpdir(), 'flynn-ts-demo-'));
say('starting a one-process cluster');
const cluster = await startCluster({
  runtime: values.runtime,
  buildEnv: proxyEnv(),
  ...(values.image ? { image: values.image } : {}),
  ports: { controller: 0, router: 0, git: 0, shelf: 0 },
  onProgress: (line) => console.log(`-----> ${line}`),
});
console.log(`cluster up: ${cluster.runtime} runtime${cluster.image ? ` on ${cluster.image}` : ''}, STACK=${cluster.stack ?? '-'}, controller ${cluster.controllerUrl}, router ${cluster.routerUrl}, git ${cluster.gitHost}`);

const work = join(dir, APP);
const keyFile = join(dir, 'id_rsa');
const env = { ...process.env, HOME: dir, FLYNNRC: join(dir, '.flynnrc') };
const flynn = async (...args: string[]): Promise<void> => {
  console.log(`$ flynn ${args.join(' ')}`);
  const code = await runCli(args, {
    env,
    cwd: work,
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    readLine: async () => 'y',
  });
  if (code !== 0) throw new Error(`flynn ${args.join(' ')} exited with ${code}`);
};
const curl = async (host: string): Promise<string> => {
  const res = await get(cluster.routerUrl, host);
  console.log(`$ curl -H 'Host: ${host}' ${cluster.routerUrl}/\n${res.status} ${res.body.trim()}`);
  return res.body;
};

try {
  const key = generatePrivateKey();
  await writeFile(keyFile, key, { mode: 0o600 });
  await writeFile(`${keyFile}.pub`, `${publicKeyLine(key)}\n`);

  say('the app: examples/demo uses the express-lock fixture (express from the npm registry), saying which job answers');
  await cp(new URL('../../test/fixtures/apps/express-lock', import.meta.url), work, { recursive: true });
  const server = await readFile(join(work, 'server.js'), 'utf8');
  const tagged = server.replace('NODE_ENV=${process.env.NODE_ENV})', 'NODE_ENV=${process.env.NODE_ENV}), job ${process.env.FLYNN_JOB_ID}');
  if (tagged === server) throw new Error('examples/demo: the express-lock fixture no longer has the line the demo tags with the job id');
  await writeFile(join(work, 'server.js'), tagged);
  await exec('git', ['init', '-q', '-b', 'main', work]);
  await exec('git', ['-C', work, 'add', '-A']);
  await exec('git', ['-C', work, '-c', 'user.email=demo@flynn-ts', '-c', 'user.name=demo', 'commit', '-qm', 'express-demo']);

  say('add the cluster to the CLI, add a key, create the app');
  await flynn(...serverAddArgs(cluster, 'demo'));
  await flynn('key-add', `${keyFile}.pub`);
  await flynn('create', APP);

  say('git push flynn main');
  // `flynn create` pointed the repository's ssh at the pinned host key; add the demo's own key file.
  const pinned = (await exec('git', ['-C', work, 'config', 'core.sshCommand'])).stdout.trim();
  await exec('git', ['-C', work, 'config', 'core.sshCommand', `${pinned} -i ${keyFile} -o IdentitiesOnly=yes`]);
  const pushed = execFile('git', ['-C', work, 'push', 'flynn', 'main'], { env });
  pushed.stdout?.pipe(process.stdout);
  pushed.stderr?.pipe(process.stderr);
  const code = await new Promise<number | null>((resolve) => pushed.on('close', resolve));
  if (code !== 0) throw new Error(`git push exited with ${code}`);

  say('curl it through the router');
  await curl(`${APP}.${cluster.domain}`);

  say('add a route');
  await flynn('-a', APP, 'route-add-http', 'demo.example.com');
  await flynn('-a', APP, 'routes');
  await curl('demo.example.com');

  say('scale to 3: answers from 3 different jobs');
  await flynn('-a', APP, 'scale', 'web=3');
  const jobs = new Set<string>();
  for (let i = 0; i < 200 && jobs.size < 3; i++) {
    const res = await get(cluster.routerUrl, `${APP}.${cluster.domain}`);
    const job = /job (\S+)/.exec(res.body)?.[1];
    if (res.status === 200 && job && !jobs.has(job)) {
      jobs.add(job);
      console.log(`answer ${jobs.size}: ${res.body.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  if (jobs.size < 3) throw new Error(`only ${jobs.size} jobs answered`);
  await flynn('-a', APP, 'ps');

  say('logs, and a one-off command');
  await flynn('-a', APP, 'log', '-n', '10');
  await flynn('-a', APP, 'run', 'echo', 'hi');

  say('remove the route');
  const routes = await cluster.client.listRoutes(APP);
  const added = routes.find((r) => r.type === 'http' && r.domain === 'demo.example.com');
  if (added) await flynn('-a', APP, 'route-remove', added.id);
  await curl('demo.example.com');

  say('done');
} catch (err) {
  console.error(`demo failed: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  if (values.keep) {
    console.log(`--keep: cluster left running (controller ${cluster.controllerUrl}, key ${cluster.key}); Ctrl-C stops it`);
    process.once('SIGINT', () => void cluster.close().then(() => rm(dir, { recursive: true, force: true })).then(() => process.exit(0)));
  } else {
    say('stopping everything');
    await cluster.close();
    await rm(dir, { recursive: true, force: true });
  }
}
