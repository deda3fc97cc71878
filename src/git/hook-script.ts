/**
 * The pre-receive hook installed in every app repository. git runs it with the pushed ref updates
 * on stdin, inside the push's object quarantine, before any ref moves. For an update of a deploy
 * branch it streams `git archive <rev>` to the receiver over its private unix socket and copies the
 * receiver's answer, line by line, to stderr, which git relays to the pusher as `remote:` lines.
 * It exits non-zero, rejecting the push, when the receiver says the deploy failed. A push to any
 * other branch is stored without a deploy, and the pusher is told so.
 *
 * Kept as source text: it is written into each repo's hooks/ directory and run by the `node`
 * binary that runs the receiver, so it must be plain JavaScript with no imports beyond node:.
 */
export function preReceiveHook(nodePath: string): string {
  return `#!${nodePath}
// flynn-ts pre-receive hook: written by the git receiver; do not edit.
import { spawn } from 'node:child_process';
import { request } from 'node:http';

const socketPath = process.env.FLYNN_RECEIVE_SOCKET;
const token = process.env.FLYNN_RECEIVE_TOKEN;
const deployRefs = (process.env.FLYNN_DEPLOY_REFS || '').split(' ');
let input = '';
for await (const chunk of process.stdin) input += chunk;
const zero = /^0+$/;
const updates = input.split('\\n').filter(Boolean).map((l) => {
  const [oldRev, newRev, ref] = l.split(' ');
  return { oldRev, newRev, ref };
});
// A branch that does not deploy is stored all the same: say so, or the push looks like a deploy that went quiet.
const deployNames = deployRefs.map((r) => r.replace('refs/heads/', ''));
for (const u of updates) {
  if (deployRefs.includes(u.ref) || zero.test(u.newRev) || !u.ref.startsWith('refs/heads/')) continue;
  const branch = u.ref.slice('refs/heads/'.length);
  process.stderr.write('flynn-ts: ' + branch + ' stored but not deployed: only pushes to ' + deployNames.join(' or ') + ' deploy\\n');
}
const update = updates.find((u) => deployRefs.includes(u.ref) && !zero.test(u.newRev));
if (!update) process.exit(0);
if (!socketPath || !token) {
  process.stderr.write('flynn-ts: this repository only accepts deploys through the git receiver\\n');
  process.exit(1);
}

const archive = spawn('git', ['archive', '--format=tar', update.newRev], { stdio: ['ignore', 'pipe', 'inherit'] });
const ok = await new Promise((resolve) => {
  const req = request({ socketPath, method: 'POST', path: '/push', headers: {
    'x-flynn-token': token, 'x-flynn-update': JSON.stringify(update), 'content-type': 'application/x-tar' } }, async (res) => {
    let pending = '';
    let result = false;
    for await (const chunk of res) {
      pending += chunk;
      let nl;
      while ((nl = pending.indexOf('\\n')) !== -1) {
        const msg = JSON.parse(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
        if (typeof msg.line === 'string') process.stderr.write(msg.line + '\\n');
        if (msg.done) result = msg.ok === true;
      }
    }
    resolve(result);
  });
  req.on('error', (err) => {
    process.stderr.write('flynn-ts: lost the git receiver: ' + err.message + '\\n');
    resolve(false);
  });
  archive.stdout.pipe(req);
});
process.exit(ok ? 0 : 1);
`;
}
