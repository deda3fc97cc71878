import { connect } from 'node:net';
import { sleep } from '../../common/lifecycle.js';

/** A Runtime API answer that says the command failed. */
export class RuntimeApiError extends Error {}

/**
 * HAProxy's Runtime API over its admin stats socket: one command per connection, run one at a
 * time in order. `payload` is sent after `<<` (certificates, crt-list lines) and may not hold an
 * empty line.
 */
export class RuntimeApi {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly socketPath: string) {}

  /** Run a command; rejects with {@link RuntimeApiError} when the answer matches `failure`. */
  run(command: string, options: { payload?: string; failure?: RegExp } = {}): Promise<string> {
    const next = this.queue.then(() => this.send(command, options.payload));
    this.queue = next.catch(() => undefined);
    return next.then((answer) => {
      if (options.failure?.test(answer)) throw new RuntimeApiError(`haproxy: ${command}: ${answer.trim()}`);
      return answer;
    });
  }

  /** Resolves once every command queued so far was answered. */
  idle(): Promise<void> {
    return this.queue.then(() => undefined);
  }

  private send(command: string, payload: string | undefined): Promise<string> {
    return askSocket(this.socketPath, payload === undefined ? `${command}\n` : `${command} <<\n${payload.trim()}\n\n`, false);
  }
}

/** Write `text` to a unix socket and read the answer until HAProxy closes it (`end`: close our side first, as the master CLI needs). */
export function askSocket(path: string, text: string, end: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (answer += chunk));
    socket.once('end', () => resolve(answer));
    socket.once('error', reject);
    if (end) socket.end(text);
    else socket.write(text);
  });
}

/** Wait until the socket answers, or fail after `ms` (HAProxy opens it once its configuration is loaded). */
export async function waitForSocket(api: RuntimeApi, ms: number, exited: () => string | undefined): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const why = exited();
    if (why !== undefined) throw new Error(why);
    try {
      await api.run('show info');
      return;
    } catch (err) {
      if (Date.now() > end) throw new Error(`haproxy's runtime socket did not answer within ${ms} ms: ${(err as Error).message}`);
      await sleep(20);
    }
  }
}
