import { PROCESS_COMMANDS_DIR, PROCESS_TYPES_FILE } from './types.js';

/** Shell code run before a process's command: into `$HOME` (the app), then `.profile.d/*.sh` and `.profile`. */
const PROFILE_PRELUDE = 'cd "$HOME" || exit 1; for f in .profile.d/*.sh; do [ -f "$f" ] && . "./$f"; done; [ -f .profile ] && . ./.profile; ';

/**
 * The script that starts a process type, its command given as `$1`: the profile, then the command,
 * by `exec` when it is one simple command (most are: `node server.js --port $PORT`), so that the
 * app itself is the process that gets the job's SIGTERM on stop. A shell in between would die of
 * it and leave the app to be killed without warning. A compound command (operators, redirections,
 * substitutions, several lines, leading assignments, keywords) is evaluated as written.
 */
const START_SCRIPT =
  'c=$1; ' +
  PROFILE_PRELUDE +
  `case "\${c%%[ \t]*}" in *=*|if|for|while|until|case|'{'|'!'|exec) ;; *) case "$c" in *[';&|<>()']*|*'\`'*|*'$('*|*'\n'*) ;; *) c="exec $c" ;; esac ;; esac; eval "$c"`;

/**
 * The slug runner: the program a job runs to start one process of an app from its slug. It is
 * plain dependency-free CommonJS for the node in the runtime image (and on a process-runtime
 * host), shipped as a string so no file has to be installed anywhere: the job's command is
 * `node -e <SLUG_RUNNER_SOURCE> -- start web` (see {@link slugRunnerCommand}), or the source can be
 * written to a file and bind-mounted.
 *
 * Arguments: `start <type>` runs the slug's process type (from `.flynn/process-types.json`, else
 * the slug's `Procfile`); anything else is run as a command (`flynn run`), e.g. `-- sh -c 'ls'`.
 *
 * Environment it reads:
 * - `SLUG_URL`: `http(s)://...` (fetched) or `file:///path` (a slug mounted into the job). When
 *   unset, the app directory is used as it is (already unpacked).
 * - `APP_DIR`: where to unpack, default `/app`; becomes `HOME` and the working directory.
 * - `PORT`: the port the process must listen on (default 8080), plus the release's config vars.
 *
 * It unpacks the slug with `tar -xzf`, sources `.profile.d/*.sh` then `.profile` in `sh`, and runs
 * the command there; signals (TERM, INT, HUP, QUIT) are forwarded and its exit status is the
 * process's. Failures to fetch or unpack exit 1 with a `slugrunner:` line on stderr.
 */
export const SLUG_RUNNER_SOURCE = String.raw`'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { Readable } = require('node:stream');
const TYPES_FILE = ${JSON.stringify(PROCESS_TYPES_FILE)};
function die(msg) { process.stderr.write('slugrunner: ' + msg + '\n'); process.exit(1); }
function procfileTypes(text) {
  const out = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Za-z0-9_-]+)\s*:\s*(.+)$/.exec(line.replace(/\r$/, ''));
    if (m) out[m[1]] = m[2].trim();
  }
  return out;
}
async function unpack(url, dir) {
  let body;
  if (url.startsWith('file://')) body = fs.createReadStream(new URL(url));
  else if (/^https?:\/\//.test(url)) {
    let res;
    try { res = await fetch(url); } catch (err) { die('cannot fetch the slug from ' + url + ': ' + (err.cause ? err.cause.message : err.message)); }
    if (!res.ok) die('cannot fetch the slug from ' + url + ': HTTP ' + res.status);
    body = Readable.fromWeb(res.body);
  } else die('SLUG_URL must be an http(s):// or file:// URL, got ' + JSON.stringify(url));
  const tar = spawn('tar', ['-xzf', '-', '-C', dir], { stdio: ['pipe', 'inherit', 'inherit'] });
  body.on('error', (err) => { tar.kill(); die('reading the slug failed: ' + err.message); });
  tar.stdin.on('error', () => {});
  body.pipe(tar.stdin);
  const code = await new Promise((resolve) => { tar.on('error', () => resolve(127)); tar.on('close', resolve); });
  if (code !== 0) die('unpacking the slug into ' + dir + ' failed (tar exited with ' + code + ')');
}
async function main() {
  const args = process.argv.slice(require.main ? 2 : 1);
  if (args[0] === '--') args.shift();
  const appDir = path.resolve(process.env.APP_DIR || '/app');
  fs.mkdirSync(appDir, { recursive: true });
  if (process.env.SLUG_URL) await unpack(process.env.SLUG_URL, appDir);
  const prelude = ${JSON.stringify(PROFILE_PRELUDE)};
  let script;
  let rest = [];
  if (args[0] === 'start') {
    const type = args[1];
    if (!type) die('usage: start <process type>');
    let types = {};
    const file = path.join(appDir, TYPES_FILE);
    if (fs.existsSync(file)) types = JSON.parse(fs.readFileSync(file, 'utf8'));
    else if (fs.existsSync(path.join(appDir, 'Procfile'))) types = procfileTypes(fs.readFileSync(path.join(appDir, 'Procfile'), 'utf8'));
    const command = types[type];
    if (!command) die('the slug has no process type ' + JSON.stringify(type) + ' (it has: ' + (Object.keys(types).join(', ') || 'none') + ')');
    script = ${JSON.stringify(START_SCRIPT)};
    rest = [command];
  } else if (args.length > 0) {
    script = prelude + 'exec "$@"';
    rest = args;
  } else die('usage: start <process type> | <command> [args...]');
  const env = { ...process.env, HOME: appDir, PORT: process.env.PORT || '8080' };
  const child = spawn('/bin/sh', ['-c', script, 'sh', ...rest], { cwd: appDir, env, stdio: 'inherit' });
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT']) process.on(sig, () => child.kill(sig));
  child.on('error', (err) => die('cannot start /bin/sh: ' + err.message));
  child.on('exit', (code, signal) => process.exit(code === null ? 128 + (require('node:os').constants.signals[signal] || 1) : code));
}
main().catch((err) => die(err && err.stack ? err.stack : String(err)));
`;

/**
 * The shell front of the slug runner for `start <type>`, run as `sh -c SCRIPT slugrunner
 * <node source> start <type>`. When the slug is a local file (`file://`, as host agents hand it to
 * jobs) or already unpacked (no `SLUG_URL`), and records its types one file per type
 * ({@link PROCESS_COMMANDS_DIR}), it unpacks with `tar` and `exec`s the process's shell itself:
 * the same steps as the node runner without starting a node just to start the app (about 0.1 s
 * of every deploy). Anything else (an http(s) slug, an older slug, an unknown type) goes to the
 * node runner, which also explains the failures.
 */
export const SLUG_RUNNER_SH = `src=$1; shift
slow() { exec node -e "$src" -- "$@"; }
[ "$1" = start ] || slow "$@"
case "$2" in ''|*[!A-Za-z0-9_-]*) slow "$@" ;; esac
case "\${SLUG_URL:-}" in
  '') slug= ;;
  file:///*) slug=\${SLUG_URL#file://} ;;
  *) slow "$@" ;;
esac
case "$slug" in *%*) slow "$@" ;; esac
app=\${APP_DIR:-/app}
case "$app" in /*) ;; *) app=$(pwd)/$app ;; esac
mkdir -p "$app" || { echo "slugrunner: cannot create $app" >&2; exit 1; }
if [ -n "$slug" ]; then
  tar -xzf "$slug" -C "$app"
  rc=$?
  [ "$rc" = 0 ] || { echo "slugrunner: unpacking the slug into $app failed (tar exited with $rc)" >&2; exit 1; }
fi
file="$app/${PROCESS_COMMANDS_DIR}/$2"
if [ ! -f "$file" ]; then unset SLUG_URL; slow "$@"; fi
cmd=$(cat "$file") || exit 1
HOME=$app
PORT=\${PORT:-8080}
export HOME PORT
cd "$app" || exit 1
exec /bin/sh -c ${shQuote(START_SCRIPT)} sh "$cmd"
`;

function shQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * The job command that starts process `type` of a slug: `['/bin/sh', '-c', SLUG_RUNNER_SH,
 * 'slugrunner', SLUG_RUNNER_SOURCE, 'start', type]` (see {@link SLUG_RUNNER_SH}). The job also
 * needs `SLUG_URL`, `PORT` and the release's env, and on the process runtime `APP_DIR` (a per-job
 * directory).
 */
export function slugRunnerCommand(type: string): string[] {
  return ['/bin/sh', '-c', SLUG_RUNNER_SH, 'slugrunner', SLUG_RUNNER_SOURCE, 'start', type];
}

/** The job command that runs an arbitrary command in the slug's environment (`flynn run`). */
export function slugRunnerExec(argv: string[]): string[] {
  return ['node', '-e', SLUG_RUNNER_SOURCE, '--', ...argv];
}
