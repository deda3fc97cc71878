/** A container's streams: its attached stdio (hijacked) and its multiplexed log stream split into lines. */
import type { Duplex } from 'node:stream';
import type Dockerode from 'dockerode';
import { AsyncQueue } from '../common/async-queue.js';
import type { JobStdio, OutputChunk } from './runtime.js';
import type { LogLine } from './types.js';

/**
 * Attach to a created container's stdin and output (hijacked). The output is queued from the
 * start until read; without a tty Docker multiplexes stdout and stderr (8-byte frame headers).
 */
export async function attachStdio(container: Dockerode.Container, tty: boolean): Promise<JobStdio> {
  const stream = (await container.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true })) as unknown as Duplex;
  const output = new AsyncQueue<OutputChunk>();
  let pending: Buffer = Buffer.alloc(0);
  stream.on('data', (chunk: Buffer) => {
    if (tty) return output.push({ stream: 'stdout', data: chunk });
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 8) {
      const size = pending.readUInt32BE(4);
      if (pending.length < 8 + size) break;
      output.push({ stream: pending[0] === 2 ? 'stderr' : 'stdout', data: pending.subarray(8, 8 + size) });
      pending = pending.subarray(8 + size);
    }
  });
  stream.once('close', () => output.end());
  stream.once('end', () => output.end());
  stream.on('error', () => output.end());
  return {
    output,
    write: (data) => void stream.write(data),
    end: () => void stream.end(),
    resize: async (cols, rows) => {
      if (tty) await container.resize({ w: cols, h: rows });
    },
  };
}

/** Split Docker's multiplexed log stream (8-byte frame headers) into timestamped lines. */
export async function* demuxLogs(source: AsyncIterable<Buffer>): AsyncGenerator<LogLine> {
  let pending: Buffer = Buffer.alloc(0);
  const partial: Record<'stdout' | 'stderr', string> = { stdout: '', stderr: '' };
  for await (const chunk of source) {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= 8) {
      const size = pending.readUInt32BE(4);
      if (pending.length < 8 + size) break;
      const stream = pending[0] === 2 ? 'stderr' : 'stdout';
      const text = partial[stream] + pending.subarray(8, 8 + size).toString('utf8');
      pending = pending.subarray(8 + size);
      const lines = text.split('\n');
      partial[stream] = lines.pop() ?? '';
      for (const line of lines) yield parseTimestamped(stream, line);
    }
  }
  for (const stream of ['stdout', 'stderr'] as const) if (partial[stream] !== '') yield parseTimestamped(stream, partial[stream]);
}

function parseTimestamped(stream: 'stdout' | 'stderr', raw: string): LogLine {
  const space = raw.indexOf(' ');
  const stamp = space > 0 ? new Date(raw.slice(0, space)) : undefined;
  if (stamp && !Number.isNaN(stamp.getTime())) return { stream, line: raw.slice(space + 1).replace(/\r$/, ''), time: stamp.toISOString() };
  return { stream, line: raw, time: new Date().toISOString() };
}
