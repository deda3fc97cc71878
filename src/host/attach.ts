/**
 * `GET /jobs/:id/attach` with `Upgrade: flynn-attach`: the stdin, output, terminal size, signals
 * and exit status of an interactive job over one connection (frames: common/http/frames.ts).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { FlynnError } from '../common/errors.js';
import { acceptAttach, FrameType, frameJson, refuseAttach, wantsAttach, type FrameChannel } from '../common/http/frames.js';
import type { KeyCheck } from '../common/http/key-auth.js';
import type { HostAgent } from './agent.js';
import { HostErrorCodes } from './errors.js';

const ATTACH_PATH = /^\/jobs\/([A-Za-z0-9][A-Za-z0-9_.-]{0,63})\/attach(?:\?.*)?$/;

/** The server's `upgrade` listener: checks the key, then attaches. Anything else is refused. */
export function attachUpgradeHandler(agent: HostAgent, checkKey: ((authorization: string | undefined) => KeyCheck) | null, track: (socket: Duplex) => void) {
  return (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => {});
    const check = checkKey ? checkKey(req.headers.authorization) : 'ok';
    if (check !== 'ok') {
      refuseAttach(socket, 401, { code: HostErrorCodes.UNAUTHORIZED, message: check === 'missing' ? 'missing host key (Authorization: Bearer <key>)' : 'wrong host key', retryable: false }, { 'WWW-Authenticate': 'Bearer realm="flynn-host"' });
      return;
    }
    const id = ATTACH_PATH.exec(req.url ?? '')?.[1];
    if (req.method !== 'GET' || id === undefined || !wantsAttach(req)) {
      refuseAttach(socket, 404, { code: 'FLYNN_ERR_HTTP_NOT_FOUND', message: `no such upgrade endpoint: ${req.method} ${req.url}`, retryable: false });
      return;
    }
    track(socket);
    void attach(agent, id, acceptAttach(socket, head));
  };
}

async function attach(agent: HostAgent, id: string, ch: FrameChannel): Promise<void> {
  try {
    const stdio = await agent.takeStdio(id);
    ch.sendJson(FrameType.job, { id });
    void (async () => {
      for await (const f of ch) {
        if (f.type === FrameType.stdin) stdio.write(f.data);
        else if (f.type === FrameType.eof) stdio.end();
        else if (f.type === FrameType.resize) {
          const size = frameJson<{ cols?: unknown; rows?: unknown }>(f) ?? {};
          if (validSize(size.cols) && validSize(size.rows)) await stdio.resize(size.cols as number, size.rows as number).catch(() => {});
        } else if (f.type === FrameType.signal) await agent.signalJob(id, f.data.toString('utf8')).catch(() => {});
      }
    })().catch(() => {});
    for await (const chunk of stdio.output) ch.send(chunk.stream === 'stderr' ? FrameType.stderr : FrameType.stdout, chunk.data);
    const ended = await agent.waitEnded(id);
    ch.finish(FrameType.exit, { status: ended.exit?.code ?? (ended.state === 'down' ? 0 : 1) });
  } catch (err) {
    const wire = err instanceof FlynnError ? { ...err.toWire(), status: err.status } : { code: HostErrorCodes.RUNTIME, message: (err as Error).message, retryable: false, status: 500 };
    ch.finish(FrameType.error, wire);
  }
}

function validSize(n: unknown): boolean {
  return typeof n === 'number' && Number.isInteger(n) && n > 0 && n < 10_000;
}
