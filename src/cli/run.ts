/**
 * `flynn run` attached: the job's stdin, output, terminal and exit status over one stream (see
 * `ControllerClient.run`). On a terminal (stdin and stdout both) the job gets a pseudo-terminal,
 * our terminal goes raw (every key, Ctrl-C and Ctrl-D included, reaches the job's terminal) and
 * its size follows ours; otherwise stdin is piped and Ctrl-C is sent to the job as SIGINT.
 */
import type { ControllerClient } from '../controller/client.js';
import type { RunJobInput } from '../controller/types.js';
import type { CommandContext } from './context.js';

/** `tty: false` never gives the job a terminal, e.g. for bytes that go to a file (`flynn pg dump > file`). */
export async function runAttached(ctx: CommandContext, client: ControllerClient, app: string, input: Omit<RunJobInput, 'attach'>, options: { tty?: boolean } = {}): Promise<number> {
  const stdio = ctx.io.stdio;
  const size = stdio?.terminalSize();
  const tty = options.tty !== false && stdio?.stdin.isTTY === true && size !== undefined;
  const session = client.run(app, input.cmd, {
    ...(input.env ? { env: input.env } : {}),
    ...(input.memoryMb === undefined ? {} : { memoryMb: input.memoryMb }),
    tty,
    ...(tty ? { size } : {}),
    stdin: stdio?.stdin ?? '',
  });
  const cleanups: (() => void)[] = [];
  if (stdio && tty) {
    stdio.stdin.setRawMode?.(true);
    cleanups.push(() => stdio.stdin.setRawMode?.(false));
    cleanups.push(
      stdio.onResize(() => {
        const now = stdio.terminalSize();
        if (now) session.resize(now.cols, now.rows);
      }),
    );
  } else if (stdio) {
    let interrupts = 0;
    cleanups.push(stdio.onInterrupt(() => (++interrupts === 1 ? session.kill('SIGINT') : session.close())));
  }
  try {
    for await (const chunk of session.output) {
      if (stdio) stdio.write(chunk.stream, chunk.data);
      else (chunk.stream === 'stderr' ? ctx.io.stderr : ctx.io.stdout)(chunk.data.toString('utf8'));
    }
    return await session.exit;
  } finally {
    for (const undo of cleanups) undo();
    // A terminal's stdin never ends by itself: let the process exit.
    stdio?.stdin.destroy();
  }
}
