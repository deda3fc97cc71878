import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEY_ED25519, KEY_ED25519_FP } from '../../src/controller/testing/store-suite.js';
import { KEY, startHarness, type Harness } from '../controller/harness.js';

const MAIN = resolve('src/cli/main.ts');
// `--import tsx` resolves from the cwd; the CLI runs in temp dirs, so point at the loader itself.
const TSX = pathToFileURL(resolve('node_modules/tsx/dist/loader.mjs')).href;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

describe('flynn CLI against a real controller', () => {
  let h: Harness;
  let dir: string;
  let repo: string;
  let rc: string;

  const flynn = (args: string[], options: { cwd?: string; input?: string } = {}): Promise<Result> =>
    new Promise((done) => {
      const child = execFile(process.execPath, ['--import', TSX, MAIN, ...args], { cwd: options.cwd ?? dir, env: { ...process.env, FLYNNRC: rc, HOME: dir }, encoding: 'utf8' }, (err, stdout, stderr) => {
        done({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
      child.stdin?.end(options.input ?? '');
    });

  const git = (args: string[], cwd: string) => new Promise<string>((ok, ko) => execFile('git', args, { cwd, encoding: 'utf8' }, (err, out) => (err ? ko(err) : ok(out))));

  beforeAll(async () => {
    h = await startHarness({ host: '127.0.0.3', crashWhen: (r) => r.env.BROKEN === '1' });
    dir = await mkdtemp(join(tmpdir(), 'flynn-cli-'));
    rc = join(dir, 'flynnrc.json');
    repo = join(dir, 'repo');
    await git(['init', '-q', repo], dir);
  });

  afterAll(async () => {
    await h?.[Symbol.asyncDispose]();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('fails in one line with a non-zero exit before a cluster is added, and prints help', async () => {
    const none = await flynn(['apps']);
    expect(none.code).toBe(1);
    expect(none.stderr.trim().split('\n')).toEqual(['flynn: no cluster configured: run flynn server-add NAME URL KEY first']);
    const help = await flynn(['scale', '--help']);
    expect(help).toMatchObject({ code: 0 });
    expect(help.stdout).toMatch(/^usage: flynn scale/);
    expect(await flynn(['nope'])).toEqual({ code: 2, stdout: '', stderr: 'flynn: unknown command "nope" (see flynn --help)\n' });
    expect(await flynn(['scael'])).toEqual({ code: 2, stdout: '', stderr: 'flynn: unknown command "scael"; did you mean "scale"?\n' });
  });

  it('server-add writes $FLYNNRC; create adds the flynn git remote from the githost', async () => {
    const add = await flynn(['server-add', '-g', '127.0.0.3:2222', 'test', h.controller.url, KEY]);
    expect(add).toMatchObject({ code: 0 });
    const written = JSON.parse(await readFile(rc, 'utf8'));
    expect(written).toEqual({ default: 'test', clusters: [{ name: 'test', url: h.controller.url, key: KEY, gitHost: '127.0.0.3:2222' }] });
    expect(await flynn(['server-add', 'test', h.controller.url, KEY])).toEqual({
      code: 1,
      stdout: '',
      stderr: `flynn: a cluster named "test" already exists in ${rc}: replace it with flynn server-add --force, or remove it with flynn server-remove test\n`,
    });
    const created = await flynn(['create', 'myapp'], { cwd: repo });
    expect(created.code).toBe(0);
    expect(created.stdout).toContain('Created myapp');
    expect((await git(['remote', 'get-url', 'flynn'], repo)).trim()).toBe('ssh://git@127.0.0.3:2222/myapp.git');
    const dup = await flynn(['create', 'myapp']);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toBe('flynn: an app named "myapp" already exists\n');
  });

  it('server-add checks the controller and the key first, unless --no-verify', async () => {
    const before = await readFile(rc, 'utf8');
    const wrongKey = await flynn(['server-add', 'bad', h.controller.url, 'not-the-key']);
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stderr).toBe(`flynn: the controller at ${h.controller.url} refused the key (HTTP 401): check KEY (not added; --no-verify adds it anyway)\n`);
    const down = await flynn(['server-add', 'down', 'http://127.0.0.1:9', KEY]);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/^flynn: cannot reach a controller at http:\/\/127\.0\.0\.1:9: .*\(not added; --no-verify adds it anyway\)\n$/);
    expect(await readFile(rc, 'utf8')).toBe(before);
    const forced = await flynn(['server-add', '--no-verify', 'offline', 'http://127.0.0.1:9', KEY]);
    expect(forced).toMatchObject({ code: 0, stdout: 'Cluster "offline" added.\n' });
    expect(JSON.parse(await readFile(rc, 'utf8')).clusters.map((c: { name: string }) => c.name)).toEqual(['test', 'offline']);
  });

  it('lists clusters, replaces one with --force and removes one with its pinned git host key', async () => {
    const list = (await flynn(['servers'])).stdout.split('\n');
    expect(list[0]).toMatch(/^NAME\s+URL\s+GIT HOST$/);
    expect(list[1]).toMatch(new RegExp(`^test\\s+${h.controller.url}\\s+127\\.0\\.0\\.3:2222\\s+\\(default\\)$`));
    expect(list[2]).toMatch(/^offline\s+http:\/\/127\.0\.0\.1:9\s+-$/);
    expect(JSON.parse((await flynn(['servers', '--json'])).stdout)).toEqual([
      { name: 'test', url: h.controller.url, gitHost: '127.0.0.3:2222', default: true },
      { name: 'offline', url: 'http://127.0.0.1:9', default: false },
    ]);
    // A cluster whose git host was pinned (as server-add --git-fingerprint leaves it), next to another host's pin.
    const fp = 'SHA256:' + 'A'.repeat(43);
    const config = JSON.parse(await readFile(rc, 'utf8'));
    config.clusters.push({ name: 'pinned', url: 'http://127.0.0.1:9', key: KEY, gitHost: '127.0.0.9:2022', gitFingerprint: fp });
    await writeFile(rc, JSON.stringify(config));
    const knownHosts = join(dir, '.flynn', 'known_hosts');
    await mkdir(join(dir, '.flynn'), { recursive: true });
    await writeFile(knownHosts, '[127.0.0.9]:2022 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOne\n[127.0.0.8]:2022 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITwo\n');
    const replaced = await flynn(['server-add', '-f', '--no-verify', 'offline', 'http://127.0.0.1:10', KEY]);
    expect(replaced).toEqual({ code: 0, stdout: 'Cluster "offline" replaced.\n', stderr: '' });
    expect(JSON.parse(await readFile(rc, 'utf8')).clusters.map((c: { name: string; url: string }) => `${c.name} ${c.url}`)).toEqual([`test ${h.controller.url}`, 'offline http://127.0.0.1:10', 'pinned http://127.0.0.1:9']);
    const removed = await flynn(['server-remove', 'pinned']);
    expect(removed).toEqual({ code: 0, stdout: `Cluster "pinned" removed.\nPinned key of git host 127.0.0.9:2022 removed from ${knownHosts}.\n`, stderr: '' });
    expect(await readFile(knownHosts, 'utf8')).toBe('[127.0.0.8]:2022 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITwo\n');
    expect(await flynn(['server-remove', 'pinned'])).toEqual({ code: 1, stdout: '', stderr: `flynn: no cluster named "pinned" in ${rc} (see flynn servers)\n` });
    expect(JSON.parse(await readFile(rc, 'utf8'))).toMatchObject({ default: 'test', clusters: [{ name: 'test' }, { name: 'offline' }] });
  });

  it('talks to the cluster the flynn git remote points at, unless -c says otherwise', async () => {
    const other = join(dir, 'other-repo');
    await mkdir(other, { recursive: true });
    await git(['init', '-q'], other);
    await git(['remote', 'add', 'flynn', 'ssh://git@127.0.0.4:2222/myapp.git'], other);
    expect((await flynn(['server-add', '--no-verify', '-g', '127.0.0.4:2222', 'elsewhere', 'http://127.0.0.1:9', KEY])).code).toBe(0);
    try {
      const viaRemote = await flynn(['ps'], { cwd: other });
      expect(viaRemote.code).toBe(1);
      expect(viaRemote.stderr).toContain('http://127.0.0.1:9'); // not the default cluster "test"
      expect((await flynn(['-c', 'test', 'ps'], { cwd: other })).code).toBe(0);
    } finally {
      await flynn(['server-remove', 'elsewhere']);
    }
  });

  it('key-add without a key file says how to make one', async () => {
    const none = await flynn(['key-add']);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/^flynn: cannot read a public key from .*id_ed25519\.pub.*: create one with ssh-keygen -t ed25519, or give the public key file\n$/);
  });

  it('lists apps as an aligned table and as JSON, and shows info using the git remote', async () => {
    const apps = await flynn(['apps']);
    expect(apps.stdout.split('\n')[0]).toMatch(/^NAME\s+ID\s+RELEASE\s+CREATED$/);
    expect(apps.stdout).toMatch(/^myapp\s+[0-9a-f-]{36}\s+-\s+/m);
    const json = JSON.parse((await flynn(['apps', '--json'])).stdout);
    expect(json.map((a: { name: string }) => a.name)).toEqual(['myapp']);
    const info = await flynn(['info'], { cwd: repo });
    expect(info.stdout).toMatch(/^Name:\s+myapp$/m);
    expect(info.stdout).toMatch(/^Created:\s+\S.*\n$/m);
    expect(info.stdout.endsWith('\n')).toBe(true);
    expect((await flynn(['info'])).stderr).toMatch(/^flynn: no app: give -a APP/);
  });

  it('adds, lists and removes routes with the talk\'s table shape', async () => {
    const http = await flynn(['route-add-http', 'myapp.example.com'], { cwd: repo });
    expect(http.stdout.trim()).toMatch(/^http\/[0-9a-f-]{36}$/);
    const tcp = await flynn(['-a', 'myapp', 'route-add-tcp', '-s', 'myapp-db', '4567']);
    expect(tcp.stdout.trim()).toMatch(/^tcp\//);
    const routes = (await flynn(['routes', '-a', 'myapp'])).stdout.split('\n');
    expect(routes[0]).toMatch(/^ROUTE\s+SERVICE\s+ID$/);
    const col = routes[0]?.indexOf('SERVICE');
    expect(routes[1]?.indexOf('myapp-web')).toBe(col);
    expect(routes[1]).toMatch(/^http:myapp\.example\.com\s+myapp-web\s+http\//);
    expect(routes[2]).toMatch(/^tcp:4567\s+myapp-db\s+tcp\//);
    expect((await flynn(['route-remove', '-a', 'myapp', tcp.stdout.trim()])).code).toBe(0);
    expect(JSON.parse((await flynn(['routes', '-a', 'myapp', '--json'])).stdout)).toHaveLength(1);
    // A TLS route: the certificate is shown, its private key never is.
    const fixtures = resolve('test/fixtures/tls');
    const privateKey = await readFile(join(fixtures, 'a.test.key'), 'utf8');
    const cert = await readFile(join(fixtures, 'a.test.crt'), 'utf8');
    await h.client.createRoute('myapp', { type: 'http', domain: 'secure.a.test', service: 'myapp-web', tls: { cert, key: privateKey } });
    const printed = (await flynn(['routes', '-a', 'myapp', '--json'])).stdout;
    expect(printed).not.toContain('PRIVATE KEY');
    expect(JSON.parse(printed).find((r: { domain?: string }) => r.domain === 'secure.a.test')).toMatchObject({ tls: { cert, keySet: true } });
    const bogus = await flynn(['route-remove', '-a', 'myapp', 'bogus']);
    expect(bogus.code).toBe(1);
    expect(bogus.stderr).toBe('flynn: no route "bogus"\n');
    const bad = await flynn(['route-add-tcp', '-a', 'myapp', 'port']);
    expect(bad.code).toBe(2);
  });

  it('stores a route certificate from --tls-cert/--tls-key, and never shows the key again', async () => {
    const tls = resolve('test/fixtures/tls');
    const added = await flynn(['route-add-http', '-a', 'myapp', '--tls-cert', join(tls, 'a.test.crt'), '--tls-key', join(tls, 'a.test.key'), 'tls.a.test']);
    expect(added.code).toBe(0);
    const listed = JSON.parse((await flynn(['routes', '-a', 'myapp', '--json'])).stdout) as { domain?: string; tls?: Record<string, unknown> }[];
    const route = listed.find((r) => r.domain === 'tls.a.test');
    expect(route?.tls).toEqual({ cert: await readFile(join(tls, 'a.test.crt'), 'utf8'), keySet: true });
    expect(JSON.stringify(listed)).not.toContain('PRIVATE KEY');
    // A pair the router could not serve is refused in one line naming the field, and stored nowhere.
    const refused = async (cert: string, key: string, domain: string) => {
      const r = await flynn(['route-add-http', '-a', 'myapp', '--tls-cert', join(tls, cert), '--tls-key', join(tls, key), domain]);
      expect(r.code).toBe(1);
      return r.stderr;
    };
    expect(await refused('a.test.crt', 'b.test.key', 'mismatch.a.test')).toContain('tls.key does not match tls.cert');
    expect(await refused('a.test.key', 'a.test.key', 'keyascert.a.test')).toContain('tls.cert holds a private key');
    expect(await refused('a.test.crt', 'a.test.crt', 'certaskey.a.test')).toContain('tls.key is not a readable PEM private key');
    expect(await refused('a.test.crt', 'a.test.key', 'shop.example.com')).toContain('tls.cert does not name shop.example.com (it names DNS:a.test, DNS:*.a.test)');
    const all = (await flynn(['routes', '-a', 'myapp', '--json'])).stdout;
    expect(all).not.toMatch(/mismatch|keyascert|certaskey|shop\.example\.com/);
    expect(all).not.toContain('PRIVATE KEY');
    const half = await flynn(['route-add-http', '-a', 'myapp', '--tls-cert', join(tls, 'a.test.crt'), 'half.example.com']);
    expect(half.code).toBe(2);
    expect(half.stderr).toContain('--tls-cert and --tls-key go together');
    const missing = await flynn(['route-add-http', '-a', 'myapp', '--tls-cert', join(dir, 'nope.crt'), '--tls-key', join(dir, 'nope.key'), 'gone.example.com']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/cannot read the certificate .*nope\.crt: ENOENT/);
  });

  it("sets a route's timeouts, health check and HTTPS redirect from flags, and changes them with route-update", async () => {
    const added = await flynn(['route-add-http', '-a', 'myapp', '--connect-timeout', '500ms', '--response-timeout', '30s', '--health-path', '/healthz', '--health-interval', '2s', '--redirect-https', 'opts.example.com']);
    expect(added.stderr).toBe('');
    const id = added.stdout.trim();
    expect(await h.client.getRoute('myapp', id)).toMatchObject({ timeouts: { connectMs: 500, responseHeadersMs: 30_000 }, healthCheck: { path: '/healthz', intervalMs: 2000 }, redirectHttps: true });
    const updated = await flynn(['route-update', '-a', 'myapp', '--idle-timeout', '1m', '--health-timeout', '250', '--no-redirect-https', '--sticky', id]);
    expect(updated.stdout).toBe(`Route ${id} updated.\n`);
    const route = await h.client.getRoute('myapp', id);
    expect(route).toMatchObject({ sticky: true, redirectHttps: false, timeouts: { connectMs: 500, responseHeadersMs: 30_000, idleMs: 60_000 }, healthCheck: { path: '/healthz', intervalMs: 2000, timeoutMs: 250 } });
    await flynn(['route-update', '-a', 'myapp', '--no-timeouts', '--no-health-check', id]);
    const cleared = await h.client.getRoute('myapp', id);
    expect(cleared).not.toHaveProperty('timeouts');
    expect(cleared).not.toHaveProperty('healthCheck');
    const badDuration = await flynn(['route-add-http', '-a', 'myapp', '--connect-timeout', 'soon', 'bad.example.com']);
    expect(badDuration).toMatchObject({ code: 2 });
    expect(badDuration.stderr).toContain('--connect-timeout wants a duration like 500ms, 5s or 2m; got "soon"');
    const noPath = await flynn(['route-update', '-a', 'myapp', '--health-interval', '1s', id]);
    expect(noPath.stderr).toContain('--health-interval and --health-timeout need --health-path');
    const badPath = await flynn(['route-add-http', '-a', 'myapp', '--health-path', 'healthz', 'bad.example.com']);
    expect(badPath).toMatchObject({ code: 1 });
    expect(badPath.stderr).toContain('healthCheck.path');
    expect((await flynn(['route-update', '-a', 'myapp', id])).stderr).toContain('nothing to change');
  });

  it('adds a key from a file and lists its fingerprint', async () => {
    const file = join(dir, 'id.pub');
    await writeFile(file, KEY_ED25519 + '\n');
    const added = await flynn(['key-add', file]);
    expect(added.stdout.trim()).toBe(`Key ${KEY_ED25519_FP} added.`);
    expect((await flynn(['keys'])).stdout).toContain(KEY_ED25519_FP);
  });

  it('deploys, scales, shows ps, runs commands with their exit code, logs and kills jobs', async () => {
    const artifact = await h.client.createArtifact({ url: 'http://127.0.0.1:9/slug.tgz', processes: { web: { cmd: ['web'] }, worker: { cmd: ['worker'] } } });
    const release = await h.client.createRelease('myapp', { artifactId: artifact.id });
    await h.client.waitForDeployment('myapp', (await h.client.deploy('myapp', release.id)).id);
    const scaled = await flynn(['scale', '-a', 'myapp', 'web=3', 'worker=2']);
    expect(scaled.stdout.trim()).toMatch(/^scaled myapp: web=3 worker=2 \(up in \d+\.\d s\)$/); // it waited: ps shows them up
    expect((await flynn(['scale', '-a', 'myapp', '--no-wait', 'worker=2'])).stdout.trim()).toBe('scaled myapp: worker=2');
    expect((await flynn(['scale', '-a', 'myapp'])).stdout.trim()).toBe('web=3 worker=2');
    const ps = (await flynn(['ps', '-a', 'myapp'])).stdout.trim().split('\n');
    expect(ps[0]).toMatch(/^ID\s+TYPE\s+STATE\s+RELEASE\s+STARTED$/);
    expect(ps.slice(1).filter((l) => /\sweb\s+up\s+v1\s/.test(l))).toHaveLength(3);
    const run = await flynn(['run', '-a', 'myapp', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
    expect(run).toEqual({ code: 3, stdout: 'out\n', stderr: 'err\n' });
    const job = ps[1]?.split(/\s+/)[0] ?? '';
    // The 8 characters a log line shows (web.a8d84235) name the job.
    const short = job.slice(0, 8);
    const log = await flynn(['log', '-a', 'myapp', short]);
    expect(log.stdout).toMatch(/job of release v1 up/);
    expect((await flynn(['kill', '-a', 'myapp', short])).stdout.trim()).toBe(`Job ${short} killed.`);
    expect((await h.client.listJobs('myapp')).map((j) => j.id)).not.toContain(job);
    expect((await flynn(['kill', '-a', 'myapp', job])).code).toBe(1);
  });

  it('refuses to scale a type the release lacks in one line naming its types, and shows counts kept for a later release', async () => {
    await h.client.createApp({ name: 'kept' });
    const both = await h.client.createArtifact({ url: 'http://127.0.0.1:9/both.tgz', processes: { web: { cmd: ['web'] }, worker: { cmd: ['worker'] } } });
    const webOnly = await h.client.createArtifact({ url: 'http://127.0.0.1:9/web.tgz', processes: { web: { cmd: ['web'] } } });
    await h.client.waitForDeployment('kept', (await h.client.deploy('kept', (await h.client.createRelease('kept', { artifactId: both.id })).id)).id);
    expect((await flynn(['scale', '-a', 'kept', '--no-wait', 'worker=2'])).stdout.trim()).toBe('scaled kept: worker=2');
    await h.client.waitForDeployment('kept', (await h.client.deploy('kept', (await h.client.createRelease('kept', { artifactId: webOnly.id })).id)).id);
    expect(await flynn(['scale', '-a', 'kept'])).toEqual({ code: 0, stdout: 'web=1\nkept for a release that has them (v2 has not): worker=2\n', stderr: '' });
    expect(await flynn(['scale', '-a', 'kept', 'worker=1'])).toEqual({ code: 1, stdout: '', stderr: 'flynn: release v2 of kept has no process type "worker" (its process types: web)\n' });
    await h.client.deleteApp('kept');
  });

  it('log -f follows new lines until stopped', async () => {
    const run = async (script: string) => {
      for await (const _ of h.client.run('myapp', { cmd: ['sh', '-c', script] })) {
        // drain
      }
    };
    // A one-off job before the follow: its line, from the history, shows the follow is open.
    await run('echo followed-0');
    const child = spawn(process.execPath, ['--import', TSX, MAIN, 'log', '-f', '-t', 'run', '-a', 'myapp'], { cwd: dir, env: { ...process.env, FLYNNRC: rc, HOME: dir } });
    try {
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      const shows = (text: string) =>
        new Promise<void>((resolve, reject) => {
          const check = () => out.includes(text) && resolve();
          child.stdout.on('data', check);
          child.once('exit', (code) => reject(new Error(`flynn log -f exited (${code}) before showing ${text}: ${out}`)));
          check();
        });
      await shows('followed-0');
      // A job started after the follow opened: its lines are followed as they come.
      await run('echo followed-1; echo followed-2');
      await shows('followed-2');
      expect(out).toMatch(/run\.[0-9a-f]{8}: followed-1\n.*run\.[0-9a-f]{8}: followed-2/s);
      expect(child.exitCode).toBeNull();
    } finally {
      child.kill('SIGTERM');
    }
  });

  it('sets and unsets env as new releases, lists releases and rolls back', async () => {
    const set = await flynn(['env', '-a', 'myapp', 'set', 'A=1', 'B=two words']);
    expect(set.stdout.trim()).toBe('Created release v2 and deployed it.');
    expect((await flynn(['env', '-a', 'myapp'])).stdout).toBe('A=1\nB=two words\n');
    await flynn(['env', '-a', 'myapp', 'unset', 'A']);
    expect(JSON.parse((await flynn(['env', '-a', 'myapp', '--json'])).stdout)).toEqual({ B: 'two words' });
    const releases = (await flynn(['releases', '-a', 'myapp'])).stdout.split('\n');
    expect(releases[0]).toMatch(/^VERSION\s+ID\s+PROCESSES\s+CREATED\s+STATUS$/);
    expect(releases[1]).toMatch(/^v3\s.*\scurrent$/);
    expect(releases[2]).toMatch(/^v2\s.*\d$/);
    const back = await flynn(['rollback', '-a', 'myapp', 'v1']);
    expect(back.stdout.trim()).toBe('Rolled back to v1: release v4 deployed.');
    expect((await flynn(['env', '-a', 'myapp'])).stdout).toBe('');
    const previous = await flynn(['rollback', '-a', 'myapp']);
    expect(previous.stdout).toBe('Rolled back to v3: release v5 deployed.\n');
    expect((await flynn(['env', '-a', 'myapp'])).stdout).toBe('B=two words\n');
  });

  it('env unset of a variable that is not set, or set to the value it has, makes no release', async () => {
    const versions = async () => (await h.client.listReleases('myapp')).map((r) => r.version);
    const before = await versions();
    const unset = await flynn(['env', '-a', 'myapp', 'unset', 'NOPE']);
    expect(unset).toEqual({ code: 0, stdout: 'NOPE is not set.\nNo change: release v5 stays current.\n', stderr: '' });
    const same = await flynn(['env', '-a', 'myapp', 'set', 'B=two words']);
    expect(same).toEqual({ code: 0, stdout: 'B already has that value.\nNo change: release v5 stays current.\n', stderr: '' });
    expect(await versions()).toEqual(before);
    const partly = await flynn(['env', '-a', 'myapp', 'unset', 'B', 'NOPE']);
    expect(partly.stdout).toBe('NOPE is not set.\nCreated release v6 and deployed it.\n');
    expect((await flynn(['env', '-a', 'myapp'])).stdout).toBe('');
    // The platform owns PORT: refused in one line, no release made.
    const port = await flynn(['env', '-a', 'myapp', 'set', 'PORT=1234']);
    expect(port).toEqual({ code: 1, stdout: '', stderr: "flynn: PORT cannot be set in an app's env: the platform sets PORT to the port each web job must listen on\n" });
    expect((await versions()).length).toBe(before.length + 1);
  });

  it('reports a failed deployment in one line, non-zero, with the old release still current', async () => {
    const res = await flynn(['env', '-a', 'myapp', 'set', 'BROKEN=1']);
    expect(res.code).toBe(1);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
    expect(res.stderr).toMatch(/^flynn: deployment .* failed, the previous release keeps running: .*crashed/);
    expect((await h.client.currentRelease('myapp')).version).toBe(6);
    const releases = (await flynn(['releases', '-a', 'myapp'])).stdout.split('\n');
    expect(releases[1]).toMatch(/^v7\s.*\sfailed: .*crashed/);
    expect(releases[2]).toMatch(/^v6\s.*\scurrent$/);
    const json = JSON.parse((await flynn(['releases', '-a', 'myapp', '--json'])).stdout) as { version: number; status: string }[];
    expect(json.slice(0, 3).map((r) => `v${r.version}:${r.status}`)).toEqual(['v7:failed', 'v6:current', 'v5:']);
  });

  it('buildpacks shows, sets and clears the buildpack of the next push (BUILDPACK_URL)', async () => {
    await h.client.createApp({ name: 'bpapp' });
    expect((await flynn(['buildpacks', '-a', 'bpapp'])).stdout).toBe('bpapp has no buildpack set: each push is detected (a .buildpacks file in the app lists several)\n');
    const set = await flynn(['buildpacks', '-a', 'bpapp', 'set', 'https://git.example.test/buildpacks/go.git#v3']);
    expect(set.stdout).toMatch(/^Created release v\d+ and deployed it\.\n$/);
    expect((await h.client.getEnv('bpapp')).BUILDPACK_URL).toBe('https://git.example.test/buildpacks/go.git#v3');
    expect(JSON.parse((await flynn(['buildpacks', '-a', 'bpapp', '--json'])).stdout)).toEqual({ buildpackUrl: 'https://git.example.test/buildpacks/go.git#v3' });
    await flynn(['buildpacks', '-a', 'bpapp', 'clear']);
    expect((await h.client.getEnv('bpapp')).BUILDPACK_URL).toBeUndefined();
    expect(await flynn(['buildpacks', '-a', 'bpapp', 'set'])).toMatchObject({ code: 2 });
  });

  it("strategy shows and sets how an app's deploys replace its jobs, and refuses an unknown one in one line", async () => {
    await h.client.createApp({ name: 'stratapp' });
    expect(await flynn(['strategy', '-a', 'stratapp'])).toEqual({ code: 0, stdout: 'stratapp deploys all-at-once\n', stderr: '' });
    expect(await flynn(['strategy', '-a', 'stratapp', 'one-by-one'])).toEqual({ code: 0, stdout: 'stratapp now deploys one-by-one\n', stderr: '' });
    expect((await h.client.getApp('stratapp')).strategy).toBe('one-by-one');
    const bad = await flynn(['strategy', '-a', 'stratapp', 'rolling']);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/^flynn: .*strategy.*(all-at-once|one-by-one)/);
    expect((await h.client.getApp('stratapp')).strategy).toBe('one-by-one');
  });

  it('deletes an app after confirmation with y, yes (any case) or the app name', async () => {
    for (const no of ['no\n', 'n\n', 'myap\n', '\n', '']) expect((await flynn(['delete', '-a', 'myapp'], { input: no })).code, no).toBe(1);
    for (const [name, yes] of [['gone1', 'y'], ['gone2', 'YES'], ['gone3', 'gone3']] as const) {
      await h.client.createApp({ name });
      const res = await flynn(['delete', '-a', name], { input: `${yes}\n` });
      expect(res.code, yes).toBe(0);
      expect(res.stdout).toMatch(new RegExp(`^Deleted ${name} \\(`));
    }
    // Deleting the app of the repo's flynn remote removes that remote (and only remotes of that app).
    await git(['remote', 'add', 'origin', 'git@github.com:someone/myapp.git'], repo);
    const del = await flynn(['delete'], { input: 'Yes\n', cwd: repo });
    expect(del.code).toBe(0);
    expect(del.stdout).toMatch(/^Deleted myapp \(.*\)\nRemoved git remote flynn \(ssh:\/\/git@127\.0\.0\.3:2222\/myapp\.git\)\.\n$/);
    expect((await git(['remote'], repo)).trim()).toBe('origin');
    expect((await flynn(['info', '-a', 'myapp'])).stderr).toBe('flynn: no app named or with id "myapp"\n');
  });
});
