/**
 * Programmatic deploy with the typed client: create an app, push a directory, scale, curl.
 *
 *   CONTROLLER_URL=https://127.0.0.1:8081 CONTROLLER_PIN=<pin npm start printed> CONTROLLER_KEY=... GIT_HOST=127.0.0.1:2222 ROUTER_URL=http://127.0.0.1:8080 \
 *     npx tsx examples/deploy/main.ts --app hello --dir test/fixtures/apps/node-hello [--scale web=2]
 *
 * Without CONTROLLER_URL it starts its own one-process cluster for the run. Everything but the push
 * goes through `ControllerClient`; the push is `git push` over SSH with a key registered for it.
 */
import { execFile } from 'node:child_process';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { startCluster, type Cluster } from '../../src/bootstrap/index.js';
import { ControllerClient } from '../../src/controller/index.js';
import { generatePrivateKey, publicKeyLine } from '../../src/git/index.js';
import { parseCli } from '../shared/cli-args.js';

const exec = promisify(execFile);
const cli = parseCli({
  name: 'deploy',
  usage: 'node --import tsx examples/deploy/main.ts [flags]',
  summary: 'Deploy a directory with the typed client: create the app, git push, scale, curl through the router.\nWithout CONTROLLER_URL it starts its own one-process cluster for the run.',
  flags: {
    app: { type: 'string', value: 'NAME', default: 'hello', help: 'app name' },
    dir: { type: 'string', value: 'DIR', default: 'test/fixtures/apps/node-hello', help: 'the app source to push' },
    scale: { type: 'string', value: 'TYPE=N,...', default: 'web=2', help: 'formation after the push' },
    domain: { type: 'string', value: 'DOMAIN', env: 'FLYNN_DOMAIN', default: 'flynn.local', help: "the cluster's app domain" },
  },
  notes: 'environment without a flag (all four to use a running cluster):\n  CONTROLLER_URL, CONTROLLER_KEY, GIT_HOST (host:port), ROUTER_URL\n  CONTROLLER_PIN   the controller certificate pin (npm start prints it after server-add -p)',
});
const { values } = cli;
function fail(message: string): never {
  return cli.fail(message);
}
const scale: Record<string, number> = {};
for (const part of values.scale.split(',')) {
  const m = /^([a-z][a-z0-9-]*)=(\d+)$/.exec(part.trim());
  if (!m) fail(`--scale must look like web=2,worker=1, got ${values.scale}`);
  else scale[m[1] as string] = Number(m[2]);
}

let cluster: Cluster | undefined;
let controllerUrl = process.env.CONTROLLER_URL;
let key = process.env.CONTROLLER_KEY;
let gitHost = process.env.GIT_HOST;
let routerUrl = process.env.ROUTER_URL;
let pin = process.env.CONTROLLER_PIN || null;
if (!controllerUrl) {
  console.log('-----> CONTROLLER_URL not set: starting a cluster for this run');
  cluster = await startCluster({ ports: { controller: 0, router: 0, git: 0, shelf: 0 }, domain: values.domain });
  ({ controllerUrl, key, gitHost, routerUrl, controllerPin: pin } = cluster);
}
if (!key || !gitHost || !routerUrl) fail('set CONTROLLER_KEY, GIT_HOST and ROUTER_URL with CONTROLLER_URL');

const client = new ControllerClient({ url: controllerUrl, key: key as string, ...(pin !== null ? { tls: { pin } } : {}) });
const work = await mkdtemp(join(tmpdir(), 'flynn-ts-deploy-'));
try {
  // 1. the app
  const app = await client.getApp(values.app).catch(() => client.createApp({ name: values.app }));
  console.log(`-----> app ${app.name} (${app.id})`);

  // 2. a key for this push
  const privateKey = generatePrivateKey();
  const keyFile = join(work, 'id_rsa');
  await writeFile(keyFile, privateKey, { mode: 0o600 });
  const registered = await client.addKey(publicKeyLine(privateKey));

  // 3. push the directory (as a fresh one-commit repository)
  const repo = join(work, 'repo');
  await cp(resolve(values.dir), repo, { recursive: true });
  await exec('git', ['init', '-q', '-b', 'main', repo]);
  await exec('git', ['-C', repo, 'add', '-A']);
  await exec('git', ['-C', repo, '-c', 'user.email=deploy@flynn-ts', '-c', 'user.name=deploy', 'commit', '-qm', `deploy ${values.dir}`]);
  const [host, port] = (gitHost as string).split(':');
  const ssh = `ssh -i ${keyFile} -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -p ${port}`;
  const started = Date.now();
  const { stderr } = await exec('git', ['-C', repo, 'push', '-f', `ssh://git@${host}:${port}/${app.name}.git`, 'main'], { env: { ...process.env, GIT_SSH_COMMAND: ssh } });
  process.stdout.write(stderr);
  await client.removeKey(registered.fingerprint);

  // 4. scale and look
  await client.scale(app.name, scale);
  const jobs = await client.listJobs(app.name);
  console.log(`-----> scaled ${Object.entries(scale).map(([t, n]) => `${t}=${n}`).join(' ')}; jobs: ${jobs.map((j) => `${j.type}:${j.state}`).join(', ')}`);

  // 5. curl through the router
  const body = await new Promise<string>((res, rej) => {
    const req = request(routerUrl as string, { headers: { host: `${app.name}.${values.domain}` }, agent: false }, (r) => {
      let text = '';
      r.setEncoding('utf8');
      r.on('data', (c: string) => (text += c));
      r.on('end', () => res(`${r.statusCode} ${text.trim()}`));
    });
    req.on('error', rej);
    req.end();
  });
  console.log(`-----> GET http://${app.name}.${values.domain} → ${body} (${Date.now() - started} ms after the push began)`);
} catch (err) {
  console.error(`deploy failed: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  await client.close();
  await rm(work, { recursive: true, force: true });
  await cluster?.close();
}
