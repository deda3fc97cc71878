/**
 * A pseudo-terminal for process jobs without a native module: a short python3 program (its `pty`
 * module is in every python3) forks the job on a new pty and relays bytes, as `docker run -t` does.
 *
 * - fd 0 → the pty (keys as typed: Ctrl-C and Ctrl-D reach the job through the line discipline);
 * - the pty → fd 1 (raw, escape sequences intact);
 * - fd 3 takes `"<cols> <rows>\n"` lines: each resizes the pty (TIOCSWINSZ), and the kernel sends
 *   SIGWINCH to the terminal's foreground process group;
 * - SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1/2 sent to the helper go on to the job's process group;
 * - it exits with the job's status (128 + N for a job killed by signal N, as a shell says it).
 */
import type { ChildProcess } from 'node:child_process';
import type { Writable } from 'node:stream';

const PROGRAM = String.raw`
import errno, fcntl, os, pty, select, signal, struct, sys, termios

def set_size(fd, cols, rows):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))

# Signals for the job that come before it exists are kept, and sent once it does.
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
pid, early = 0, []

def forward(sig, _frame):
    if pid == 0:
        early.append(sig)
        return
    try:
        os.kill(-pid, sig)
    except OSError:
        pass

for s in FORWARDED:
    signal.signal(s, forward)

# Keys are relayed only once the child leads its session on the pty (so Ctrl-C has a process group
# to reach), and the job starts only once the pty has a size (80x24 until the first resize).
ready_r, ready_w = os.pipe()
go_r, go_w = os.pipe()
pid, master = pty.fork()
if pid == 0:
    # The job's own signals, from here (a Ctrl-C before the exec ends it, with no traceback).
    for s in FORWARDED:
        signal.signal(s, signal.SIG_DFL)
    os.close(3)
    os.close(go_w)
    os.close(ready_r)
    os.write(ready_w, b'.')
    os.close(ready_w)
    os.read(go_r, 1)
    name, failure = sys.argv[1], None
    # execvp's PATH search, without the imports it makes on the way.
    for d in ([''] if '/' in name else os.environ.get('PATH', '/usr/bin:/bin').split(':')):
        try:
            os.execv(os.path.join(d, name) if d else name, sys.argv[1:])
        except OSError as e:
            failure = failure if failure and failure.errno != errno.ENOENT else e
    os.write(2, ('%s: %s\r\n' % (name, failure.strerror if failure else 'not found')).encode())
    os._exit(127)

os.close(go_r)
os.close(ready_w)
os.read(ready_r, 1)
os.close(ready_r)
set_size(master, 80, 24)
os.write(go_w, b'.')
os.close(go_w)

for sig in early:
    forward(sig, None)

def write_all(fd, data):
    while data:
        data = data[os.write(fd, data):]

inputs = [0, master, 3]
pending = b''
status = None
while True:
    ready = select.select(inputs, [], [], 0.1)[0]
    if master in ready:
        try:
            data = os.read(master, 65536)
        except OSError as e:
            if e.errno != errno.EIO:
                raise
            data = b''
        if not data:
            break
        write_all(1, data)
    if 0 in ready:
        data = os.read(0, 65536)
        if data:
            try:
                write_all(master, data)
            except OSError:
                pass
        else:
            inputs.remove(0)
    if 3 in ready:
        data = os.read(3, 4096)
        if not data:
            inputs.remove(3)
        pending += data
        while b'\n' in pending:
            line, pending = pending.split(b'\n', 1)
            try:
                cols, rows = (int(n) for n in line.split())
                set_size(master, cols, rows)
            except (ValueError, OSError):
                pass
    if status is None:
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status = st
    elif master not in ready:
        break
if status is None:
    status = os.waitpid(pid, 0)[1]
code = os.waitstatus_to_exitcode(status)
sys.exit(128 - code if code < 0 else code)
`;

/** The command line that runs `cmd` on a pty through `python` (a python3 executable). */
export function ptyCommand(python: string, cmd: readonly string[]): [string, string[]] {
  // -I: no PYTHON* variables or user site; -S: no site import (faster start).
  return [python, ['-I', '-S', '-c', PROGRAM, ...cmd]];
}

/** The stdio of a child started with {@link ptyCommand}: stdin, stdout, stderr and the resize pipe. */
export const PTY_STDIO = ['pipe', 'pipe', 'pipe', 'pipe'] as const;

/** Resize the pty of a child started with {@link ptyCommand}. */
export function resizePty(child: ChildProcess, cols: number, rows: number): void {
  const control = child.stdio[3] as Writable | null | undefined;
  if (control && !control.destroyed) control.write(`${cols} ${rows}\n`);
}
