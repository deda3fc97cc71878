import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cluster } from '../../src/bootstrap/index.js';
import { generatePrivateKey, publicKeyLine } from '../../src/git/index.js';

const exec = promisify(execFile);
const FIXTURES = join(import.meta.dirname, '../fixtures/apps');

/** GET through the router with `Host: <host>`; resolves with status and body (never throws on HTTP errors). */
export function getVia(routerUrl: string, host: string, path = '/'): Promise<{ status: number; body: string }> {
  const url = new URL(path, routerUrl);
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { host }, timeout: 5000, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

export async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const got = await probe();
      if (got !== undefined) return got;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
}

/**
 * The talk's demo against one cluster: create an app and a key, `git push` node-hello over real
 * SSH, fetch it through the router, scale to 3, run a one-off job, read logs, and have a failing
 * build rejected while the old release keeps answering.
 */
export function describeDeploy(name: string, start: () => Promise<Cluster>, appName: string, hosts = 1): void {
  describe(`git push deploys on a one-process cluster (${name})`, () => {
    let cluster: Cluster;
    let dir: string;
    let keyFile: string;
    let work: string;
    const host = () => `${appName}.${cluster.domain}`;

    const push = async (keyPath: string): Promise<{ code: number; output: string }> => {
      const [gitHost, gitPort] = cluster.gitHost.split(':');
      const ssh = `ssh -i ${keyPath} -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -p ${gitPort}`;
      try {
        const { stdout, stderr } = await exec('git', ['-C', work, 'push', `ssh://git@${gitHost}:${gitPort}/${appName}.git`, 'main'], { env: { ...process.env, GIT_SSH_COMMAND: ssh }, timeout: 120_000 });
        return { code: 0, output: stdout + stderr };
      } catch (err) {
        const e = err as { code: number; stdout: string; stderr: string };
        return { code: e.code, output: e.stdout + e.stderr };
      }
    };
    /** GETs through the router in a loop until stopped, counting the 200s and the rest. */
    const requests = () => {
      let ok = 0;
      let failed = 0;
      let polling = true;
      const poller = (async () => {
        while (polling) {
          const r = await getVia(cluster.routerUrl, host()).catch(() => ({ status: 0, body: '' }));
          if (r.status === 200) ok++;
          else failed++;
          await new Promise((res) => setTimeout(res, 20));
        }
      })();
      return {
        stop: async () => {
          polling = false;
          await poller;
          return { ok, failed };
        },
      };
    };
    const commit = async (message: string) => {
      await exec('git', ['-C', work, 'add', '-A']);
      await exec('git', ['-C', work, '-c', 'user.email=t@t', '-c', 'user.name=t', 'commit', '-qm', message]);
    };

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'flynn-ts-e2e-'));
      cluster = await start();
      const key = generatePrivateKey();
      keyFile = join(dir, 'id_rsa');
      await writeFile(keyFile, key, { mode: 0o600 });
      await cluster.client.addKey(publicKeyLine(key));
      await cluster.client.createApp({ name: appName });
      work = join(dir, 'app');
      await cp(join(FIXTURES, 'node-hello'), work, { recursive: true });
      // Say which job answers, so that answers from different jobs can be told apart on any runtime.
      const server = await readFile(join(work, 'server.js'), 'utf8');
      await writeFile(join(work, 'server.js'), server.replace('Hello from flynn-ts on port ${port}', 'Hello from flynn-ts on port ${port} job ${process.env.FLYNN_JOB_ID}'));
      await exec('git', ['init', '-q', '-b', 'main', work]);
      await commit('node-hello');
    }, 120_000);

    afterAll(async () => {
      await cluster?.close();
      await rm(dir, { recursive: true, force: true });
    }, 60_000);

    it('deploys a git push over SSH and serves it through the router at <app>.<domain>', async () => {
      const pushed = await push(keyFile);
      expect(pushed.output).toContain('-----> ');
      expect(pushed.output).toContain(`=====> ${appName} deployed to ${cluster.appUrl(appName)}`);
      expect(pushed.code).toBe(0);
      // "deployed" means reachable: the very first request through the router is answered.
      const res = await getVia(cluster.routerUrl, host());
      expect(res.status).toBe(200);
      expect(res.body).toContain('Hello from flynn-ts');
      const routes = await cluster.client.listRoutes(appName);
      expect(routes).toEqual([expect.objectContaining({ type: 'http', domain: host(), service: `${appName}-web` })]);
    }, 120_000);

    it('refuses a push with a key the controller does not know', async () => {
      const other = join(dir, 'id_other');
      await writeFile(other, generatePrivateKey(), { mode: 0o600 });
      const pushed = await push(other);
      expect(pushed.code).not.toBe(0);
      expect(pushed.output).toContain('Permission denied');
    }, 60_000);

    it('keeps the app’s source, slug and jobs from anyone without the component’s key', async () => {
      const slugUrl = (await cluster.client.listArtifacts()).at(-1)?.url ?? '';
      expect(slugUrl.startsWith(`${cluster.shelfUrl}/slugs/`)).toBe(true);
      // The host that runs the app's job (with web=1, one of the hosts).
      const jobHost = (await cluster.client.listJobs(appName))[0]?.hostId;
      const hostAddr = cluster.scheduler.view().hosts.find((h) => h.id === jobHost)?.addr;
      expect(hostAddr, `the host of job on ${jobHost}`).toBeDefined();
      const targets = [slugUrl, `${cluster.shelfUrl}/cache/${appName}.tgz`, `http://${hostAddr}/jobs`];
      // The cluster key opens the controller only: host agents and shelf have keys derived from it.
      for (const authorization of [undefined, 'Bearer wrong', `Bearer ${cluster.key}`]) {
        for (const url of targets) {
          const res = await fetch(url, authorization ? { headers: { authorization } } : {});
          const body = await res.text();
          expect(res.status, `${url} with ${authorization ?? 'nothing'}`).toBe(401);
          expect(body).not.toContain(appName);
        }
      }
      const jobs = await fetch(`http://${hostAddr}/jobs`, { headers: { authorization: `Bearer ${cluster.hostAgentKey}` } });
      expect(jobs.status).toBe(200);
      expect(await jobs.text()).toContain(appName);
    }, 60_000);

    it('scales web to 3 and answers from 3 jobs', async () => {
      await cluster.client.scale(appName, { web: 3 });
      await until('3 web jobs up', async () => ((await cluster.client.listJobs(appName)).filter((j) => j.type === 'web' && j.state === 'up').length === 3 ? true : undefined));
      const web = (await cluster.client.listJobs(appName)).filter((j) => j.type === 'web');
      const webJobs = web.map((j) => j.id);
      // Spread over the hosts: as many different hosts as there are (up to 3).
      expect(new Set(web.map((j) => j.hostId)).size).toBe(Math.min(3, hosts));
      const seen = new Set<string>();
      await until('answers from 3 jobs', async () => {
        const r = await getVia(cluster.routerUrl, host());
        const job = /job (\S+)/.exec(r.body)?.[1];
        if (r.status === 200 && job) seen.add(job);
        return seen.size >= 3 ? true : undefined;
      });
      expect([...seen].sort()).toEqual([...webJobs].sort());
    }, 60_000);

    it('runs a one-off command in the release and shows the app log', async () => {
      const out: string[] = [];
      let status = -1;
      for await (const o of cluster.client.run(appName, { cmd: ['echo', 'hi'] })) {
        if (o.kind === 'output') out.push(o.data);
        if (o.kind === 'exit') status = o.status;
      }
      expect(out.join('')).toContain('hi');
      expect(status).toBe(0);
      const lines = await until('web log lines', async () => {
        const got: string[] = [];
        for await (const l of cluster.client.logs(appName, { type: 'web' })) got.push(l.msg);
        return got.some((l) => l.includes('node-hello listening')) ? got : undefined;
      });
      expect(lines.length).toBeGreaterThanOrEqual(3);
    }, 60_000);

    it('runs an interactive one-off job in the release: stdin streamed, the slug in /app, a tty on Docker', async () => {
      const tty = name.includes('docker');
      const script = `cat; ls "$HOME"; ${tty ? 'test -t 0 && echo on-a-tty' : 'true'}; exit 6`;
      const session = cluster.client.run(appName, ['sh', '-c', script], { stdin: tty ? 'from-stdin\r\x04' : 'from-stdin\n', tty });
      let out = '';
      for await (const c of session.output) out += c.data.toString();
      expect(await session.exit).toBe(6);
      expect(out).toContain('from-stdin');
      expect(out).toContain('package.json');
      if (tty) expect(out).toContain('on-a-tty');
    }, 60_000);

    it.runIf(name.includes('docker'))('runs a Docker job as an unprivileged user without capabilities (flynn run id -u)', async () => {
      let out = '';
      for await (const o of cluster.client.run(appName, { cmd: ['sh', '-c', 'echo "uid=$(id -u) $(grep CapEff /proc/self/status | tr -d "\\t")"'] })) if (o.kind === 'output') out += o.data;
      expect(out).toContain('uid=1000 CapEff:0000000000000000');
    }, 60_000);

    it('rejects a push whose build fails, and the previous release keeps answering throughout', async () => {
      const pkg = JSON.parse(await readFile(join(work, 'package.json'), 'utf8')) as Record<string, unknown>;
      pkg.scripts = { 'heroku-postbuild': 'echo broken on purpose && exit 3' };
      await writeFile(join(work, 'package.json'), JSON.stringify(pkg, null, 2));
      await commit('break the build');
      const before = (await cluster.client.getApp(appName)).releaseId;
      const load = requests();
      const pushed = await push(keyFile);
      const { ok, failed } = await load.stop();
      expect(pushed.code).not.toBe(0);
      expect(pushed.output).toContain('broken on purpose');
      expect(pushed.output).toMatch(/build failed/i);
      expect((await cluster.client.getApp(appName)).releaseId).toBe(before);
      expect(failed).toBe(0);
      expect(ok).toBeGreaterThan(0);
      expect((await getVia(cluster.routerUrl, host())).body).toContain('Hello from flynn-ts');
    }, 120_000);

    it('rejects a push whose web process crashes on start, and the previous release keeps serving', async () => {
      const pkg = JSON.parse(await readFile(join(work, 'package.json'), 'utf8')) as Record<string, unknown>;
      delete pkg.scripts;
      await writeFile(join(work, 'package.json'), JSON.stringify(pkg, null, 2));
      await writeFile(join(work, 'Procfile'), 'web: echo crashing on purpose; exit 4\n');
      await commit('a web process that crashes');
      const before = (await cluster.client.getApp(appName)).releaseId;
      const pushed = await push(keyFile);
      expect(pushed.code).not.toBe(0);
      expect(pushed.output).toMatch(/web job \S+ of the new release (crashed with status 4|failed)/);
      expect(pushed.output).toContain('crashing on purpose'); // its output tells the pusher why
      expect((await cluster.client.getApp(appName)).releaseId).toBe(before);
      const res = await until('the old release to answer', async () => {
        const r = await getVia(cluster.routerUrl, host());
        return r.status === 200 ? r : undefined;
      });
      expect(res.body).toContain('Hello from flynn-ts');
    }, 120_000);

    it('rejects a push whose web process answers and then exits, and the previous release keeps serving throughout', async () => {
      // Up (it answers on $PORT), then gone 300 ms later: within the deploy's hold.
      const brief = `require('http').createServer((q, s) => s.end('brief')).listen(process.env.PORT, () => setTimeout(() => { console.log('leaving on purpose'); process.exit(5); }, 300))`;
      await writeFile(join(work, 'Procfile'), `web: node -e "${brief}"\n`);
      await commit('a web process that answers, then exits');
      const before = (await cluster.client.getApp(appName)).releaseId;
      const load = requests();
      const pushed = await push(keyFile);
      const { ok, failed } = await load.stop();
      expect(pushed.code).not.toBe(0);
      expect(pushed.output).toMatch(/web job \S+ of the new release crashed with status 5/);
      // (With web=3 one job may end before the others are up: a plain crash, without the hold's hint.)
      expect(pushed.output).toContain('leaving on purpose');
      expect((await cluster.client.getApp(appName)).releaseId).toBe(before);
      expect(failed).toBe(0);
      expect(ok).toBeGreaterThan(0);
      expect((await getVia(cluster.routerUrl, host())).body).toContain('Hello from flynn-ts');
    }, 120_000);
  });
}
