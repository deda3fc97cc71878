/** Reading a process job's line log (`output.ndjson`): for `logs`, and where an adopted job's log resumes. */
import { appendFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LogOptions } from './runtime.js';
import type { LogLine } from './types.js';
import { toLine, type ProcJob, type Record_ } from './process-job.js';

export async function* jobLines(proc: ProcJob, options: LogOptions): AsyncIterable<LogLine> {
  const live = options.follow ? proc.lines.subscribe(options.signal) : undefined;
  try {
    // Lines whose write is in flight while the file is read are in one of the two snapshots.
    const before = [...proc.unflushed];
    const text = await readFile(join(proc.dir, 'output.ndjson'), 'utf8').catch(() => '');
    const records: Record_[] = [];
    for (const raw of text.split('\n')) {
      if (raw === '') continue;
      try {
        records.push(JSON.parse(raw) as Record_);
      } catch {
        // a half-written last line: the unflushed copy below has it
      }
    }
    const snapshot = new Set(records.map((r) => r.seq));
    for (const r of [...before, ...proc.unflushed]) {
      if (!snapshot.has(r.seq)) {
        records.push(r);
        snapshot.add(r.seq);
      }
    }
    records.sort((a, b) => a.seq - b.seq);
    const start = options.tail === undefined ? 0 : Math.max(0, records.length - options.tail);
    for (const r of records.slice(start)) yield toLine(r);
    if (!live) return;
    // Everything published since the subscription is live; what the snapshot holds was yielded (or
    // cut by `tail`). A line the snapshot missed (half-written in the file while its write finished,
    // so gone from `unflushed` too) still comes, even behind a later one.
    for await (const r of live) {
      if (snapshot.has(r.seq)) continue;
      snapshot.add(r.seq);
      yield toLine(r);
    }
  } finally {
    live?.end();
  }
}

/** Where an adopted detached job's line log resumes: after the last recorded line of each stream (its file offsets) and its sequence number. */
export async function resumePoint(dir: string): Promise<{ from: Record<'stdout' | 'stderr', number>; seq: number }> {
  // Resume after the last recorded line of each stream; a torn last record is left behind its newline.
  const text = await readFile(join(dir, 'output.ndjson'), 'utf8').catch(() => '');
  if (text !== '' && !text.endsWith('\n')) await appendFile(join(dir, 'output.ndjson'), '\n');
  const from = { stdout: 0, stderr: 0 };
  let seq = 0;
  for (const raw of text.split('\n')) {
    try {
      const r = JSON.parse(raw) as Record_;
      seq = Math.max(seq, r.seq);
      if (r.end !== undefined) from[r.stream] = r.end;
    } catch {
      // an empty or torn line
    }
  }
  return { from, seq };
}
