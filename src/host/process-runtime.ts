/**
 * Jobs as plain child processes, for machines without Docker. Each job runs in its own working
 * directory and its own process group (detached), so stop and signals reach every process it
 * forked. Output is captured line by line into `<dir>/output.ndjson`, which serves tail and follow.
 *
 * What is enforced (see docs/host.md): the memory limit, by a watchdog that sums the resident set
 * size of the job's process group every `memorySampleMs` and SIGKILLs the group when it is over
 * (reported as `oom`) — a spike shorter than one sample can pass. Not enforced: `cpuShares`,
 * network isolation, filesystem isolation, and `image` (the command runs on the host directly).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { chmod, mkdir, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { constants, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { Writable } from 'node:stream';
import { writeFileAtomic } from '../common/atomic-file.js';
import { CloseGuard, settlesWithin } from '../common/lifecycle.js';
import type { Logger } from '../common/logger.js';
import { silentLogger } from '../common/logger.js';
import { JobExistsError, JobNotRunningError, RuntimeError } from './errors.js';
import { EventFanout } from './event-fanout.js';
import { AsyncQueue } from '../common/async-queue.js';
import { ptyCommand, PTY_STDIO, resizePty } from './pty-helper.js';
import { ensurePrivateDir } from './private-dir.js';
import type { JobStdio, LogOptions, OutputChunk, Runtime, RuntimeEvent, RuntimeJob, RuntimeJobSpec, StopOptions } from './runtime.js';
import type { ExitStatus, LogLine } from './types.js';

export const PROCESS_RUNTIME_DEFAULTS = Object.freeze({
  /** Parent of the per-job working directories (`<baseDir>/<hostId>/<jobId>`). */
  baseDir: join(tmpdir(), 'flynn-ts-jobs'),
  /** How often the memory watchdog samples each limited job's RSS, in ms. */
  memorySampleMs: 200,
  /** Host environment variables passed to every job (job env overrides). */
  inheritEnv: ['PATH', 'LANG', 'TZ'] as readonly string[],
  /** The python3 that gives `tty` jobs their pseudo-terminal (pty-helper.ts), looked up in the job's PATH. */
  python: 'python3',
});

export interface ProcessRuntimeOptions {
  /** Default {@link PROCESS_RUNTIME_DEFAULTS}.baseDir. */
  baseDir?: string;
  /** Default {@link PROCESS_RUNTIME_DEFAULTS}.memorySampleMs. */
  memorySampleMs?: number;
  /** Default {@link PROCESS_RUNTIME_DEFAULTS}.inheritEnv. */
  inheritEnv?: readonly string[];
  /** Default {@link PROCESS_RUNTIME_DEFAULTS}.python. */
  python?: string;
  logger?: Logger;
}

interface Record_ {
  seq: number;
  stream: 'stdout' | 'stderr';
  line: string;
  time: string;
}

interface ProcJob {
  spec: RuntimeJobSpec;
  dir: string;
  child: ChildProcess;
  pgid: number;
  startedAt: string;
  exit?: ExitStatus;
  done: Promise<ExitStatus>;
  killed: boolean;
  oom: boolean;
  seq: number;
  out: WriteStream;
  /** Lines written to `out` whose write has not completed yet. */
  unflushed: Record_[];
  lines: EventFanout<Record_>;
}

const PAGE_BYTES = 4096;

export class ProcessRuntime implements Runtime {
  readonly name = 'process';
  readonly mapsPorts = false;
  private readonly baseDir: string;
  private readonly sampleMs: number;
  private readonly inheritEnv: readonly string[];
  private readonly python: string;
  private readonly logger: Logger;
  private readonly guard = new CloseGuard('process runtime');
  private readonly fanout = new EventFanout<RuntimeEvent>();
  private readonly jobs = new Map<string, ProcJob>();
  /** Stdio of running jobs started with `stdin`, until an agent takes it. */
  private readonly stdio = new Map<string, JobStdio>();
  private sampler: NodeJS.Timeout | undefined;
  private baseReady: Promise<void> | undefined;

  constructor(options: ProcessRuntimeOptions = {}) {
    this.baseDir = options.baseDir ?? PROCESS_RUNTIME_DEFAULTS.baseDir;
    this.sampleMs = options.memorySampleMs ?? PROCESS_RUNTIME_DEFAULTS.memorySampleMs;
    this.inheritEnv = options.inheritEnv ?? PROCESS_RUNTIME_DEFAULTS.inheritEnv;
    this.python = options.python ?? PROCESS_RUNTIME_DEFAULTS.python;
    this.logger = (options.logger ?? silentLogger).child({ component: 'process-runtime' });
  }

  async start(spec: RuntimeJobSpec): Promise<RuntimeJob> {
    this.guard.assertOpen();
    const { job, hostId } = spec;
    const key = keyOf(hostId, job.id);
    if (this.jobs.has(key)) throw new JobExistsError(job.id);
    const dir = join(this.baseDir, hostId, job.id);
    await (this.baseReady ??= ensurePrivateDir(this.baseDir, 'baseDir'));
    await rm(dir, { recursive: true, force: true });
    // The job's env (secrets) is in job.json and maybe its output: only the agent's user reads them.
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await chmod(dir, 0o700);
    const env: Record<string, string> = { HOME: dir };
    for (const name of this.inheritEnv) if (process.env[name] !== undefined) env[name] = process.env[name];
    Object.assign(env, job.env);
    // Each job unpacks its slug in its own directory: the runner's default `/app` is the host's.
    env.APP_DIR = join(dir, 'app');
    if (spec.artifactPath !== undefined) env.SLUG_URL = `file://${spec.artifactPath}`;
    // A terminal: the job runs on a pty that a python3 helper relays, as Docker's `Tty` (pty-helper.ts).
    const tty = job.tty === true && job.stdin === true;
    if (tty) env.TERM ??= 'xterm';
    const [file, args] = tty ? ptyCommand(this.python, job.cmd) : [job.cmd[0] as string, job.cmd.slice(1)];
    // The record goes first (an intent without a pid): a crash between it and the spawn leaves a
    // record `recover` finds, never a process nothing knows about.
    await writeFileAtomic(join(dir, 'job.json'), JSON.stringify({ spec }), { mode: 0o600 });
    const out = createWriteStream(join(dir, 'output.ndjson'), { flags: 'a', mode: 0o600 });
    out.on('error', (err) => this.logger.warn('cannot write job output', { jobId: job.id, err: err.message }));
    const child = spawn(file, args, { cwd: dir, env, detached: true, stdio: tty ? [...PTY_STDIO] : [job.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    if (child.stdin) {
      this.stdio.set(key, tty ? ttyStdio(child) : pipeStdio(child.stdin));
      // A pty's output waits for the agent even after a quick exit (as Docker's attach does).
      if (!tty) child.once('exit', () => this.stdio.delete(key));
    }
    // Caught before any await: a job that exits at once must not be missed.
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    const proc: ProcJob = {
      spec,
      dir,
      child,
      pgid: child.pid ?? 0,
      startedAt: new Date().toISOString(),
      done: Promise.resolve({ code: 0, reason: 'exit' }),
      killed: false,
      oom: false,
      seq: 0,
      out,
      unflushed: [],
      lines: new EventFanout(),
    };
    // Read the output before any await too: once the child has exited, Node resumes (drains and
    // discards) every stdio stream that has no reader yet, so a quick job's output would be lost.
    const streamsDone = Promise.all(
      (['stdout', 'stderr'] as const).map(async (stream) => {
        const source = child[stream];
        if (!source) return;
        for await (const line of createInterface({ input: source, crlfDelay: Infinity })) this.record(proc, stream, line);
      }),
    ).catch(() => {});
    try {
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', reject);
      });
    } catch (err) {
      await new Promise<void>((r) => out.end(r));
      await rm(dir, { recursive: true, force: true });
      this.stdio.delete(key);
      if (tty && (err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new RuntimeError(`cannot start job ${job.id}: a terminal on the process runtime needs python3 on the host (${this.python} not found); without a terminal (piped stdin) it runs`, { cause: err });
      }
      throw new RuntimeError(`cannot start job ${job.id}: ${(err as Error).message}`, { cause: err });
    }
    const pgid = proc.pgid;
    this.jobs.set(key, proc);
    await writeFileAtomic(join(dir, 'job.json'), JSON.stringify({ pid: pgid, spec }), { mode: 0o600 });
    proc.done = new Promise<ExitStatus>((resolve) => {
      void exited.then(({ code, signal }) => {
        // Stragglers the job forked die with it, so its pipes close.
        killGroup(pgid, 'SIGKILL');
        const exit: ExitStatus = {
          code: code ?? 128 + (signal ? (constants.signals[signal] ?? 9) : 9),
          reason: proc.oom ? 'oom' : proc.killed ? 'killed' : 'exit',
        };
        void settlesWithin(streamsDone, 2000).then(async () => {
          await new Promise<void>((r) => out.end(r));
          proc.exit = exit;
          proc.lines.end();
          this.updateSampler();
          this.fanout.publish({ type: 'exit', hostId, jobId: job.id, exit });
          resolve(exit);
        });
      });
    });
    this.updateSampler();
    return this.view(proc);
  }

  async stop(hostId: string, jobId: string, options: StopOptions): Promise<void> {
    this.guard.assertOpen();
    const proc = this.jobs.get(keyOf(hostId, jobId));
    if (!proc || proc.exit) return;
    killGroup(proc.pgid, 'SIGTERM');
    if (!(await settlesWithin(proc.done, options.graceMs)) && !proc.exit) {
      proc.killed = true;
      killGroup(proc.pgid, 'SIGKILL');
    }
    await proc.done;
  }

  async signal(hostId: string, jobId: string, signal: string): Promise<void> {
    this.guard.assertOpen();
    const proc = this.jobs.get(keyOf(hostId, jobId));
    if (!proc) throw new RuntimeError(`no process job ${jobId}`);
    if (proc.exit) throw new JobNotRunningError(jobId, 'ended');
    killGroup(proc.pgid, signal as NodeJS.Signals);
  }

  async inspect(hostId: string, jobId: string): Promise<RuntimeJob | undefined> {
    const proc = this.jobs.get(keyOf(hostId, jobId));
    return proc && this.view(proc);
  }

  async list(hostId: string): Promise<RuntimeJob[]> {
    this.guard.assertOpen();
    return [...this.jobs.values()].filter((p) => p.spec.hostId === hostId).map((p) => this.view(p));
  }

  /**
   * Child processes cannot be re-attached by a new agent: the process groups a previous agent of
   * `hostId` left behind (found by their `job.json`) are killed and their directories removed. A
   * record without a pid (the agent died while spawning) is matched by the job's working directory.
   */
  async recover(hostId: string): Promise<RuntimeJob[]> {
    this.guard.assertOpen();
    const hostDir = join(this.baseDir, hostId);
    const entries = await readdir(hostDir).catch(() => [] as string[]);
    for (const jobId of entries) {
      if (this.jobs.has(keyOf(hostId, jobId))) continue;
      const dir = join(hostDir, jobId);
      const meta = await readFile(join(dir, 'job.json'), 'utf8').then((t) => JSON.parse(t) as { pid?: number }, () => undefined);
      const groups = typeof meta?.pid === 'number' ? ((await processGroupOf(meta.pid)) === meta.pid ? [meta.pid] : []) : await groupsWorkingIn(dir);
      for (const pgid of groups) {
        this.logger.warn('killing a job left by a previous agent', { jobId, pid: pgid });
        killGroup(pgid, 'SIGKILL');
      }
      await rm(dir, { recursive: true, force: true });
    }
    return this.list(hostId);
  }

  /**
   * With `tty`: the pty's raw output from the start, its input and its size. Without: stdin only (no
   * raw output: the agent follows the job's line logs; see docs/host.md).
   */
  takeStdio(hostId: string, jobId: string): JobStdio | undefined {
    const key = keyOf(hostId, jobId);
    const stdio = this.stdio.get(key);
    this.stdio.delete(key);
    return stdio;
  }

  async remove(hostId: string, jobId: string): Promise<void> {
    this.guard.assertOpen();
    const key = keyOf(hostId, jobId);
    const proc = this.jobs.get(key);
    this.stdio.delete(key);
    if (!proc) return;
    if (!proc.exit) {
      proc.killed = true;
      killGroup(proc.pgid, 'SIGKILL');
      await proc.done;
    }
    this.jobs.delete(key);
    await rm(proc.dir, { recursive: true, force: true });
  }

  async *logs(hostId: string, jobId: string, options: LogOptions = {}): AsyncIterable<LogLine> {
    this.guard.assertOpen();
    const proc = this.jobs.get(keyOf(hostId, jobId));
    if (!proc) throw new RuntimeError(`no process job ${jobId}`);
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

  events(options: { signal?: AbortSignal } = {}): AsyncIterable<RuntimeEvent> {
    return this.fanout.subscribe(options.signal);
  }

  /** Kill every job (process jobs cannot outlive their runtime) and stop watching. */
  close(): Promise<void> {
    return this.guard.close(async () => {
      for (const proc of this.jobs.values()) {
        if (proc.exit) continue;
        proc.killed = true;
        killGroup(proc.pgid, 'SIGKILL');
      }
      await Promise.all([...this.jobs.values()].map((p) => p.done));
      if (this.sampler) clearInterval(this.sampler);
      this.fanout.end();
    });
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private record(proc: ProcJob, stream: 'stdout' | 'stderr', line: string): void {
    const r: Record_ = { seq: ++proc.seq, stream, line, time: new Date().toISOString() };
    proc.unflushed.push(r);
    proc.out.write(JSON.stringify(r) + '\n', () => {
      const i = proc.unflushed.indexOf(r);
      if (i !== -1) proc.unflushed.splice(i, 1);
    });
    proc.lines.publish(r);
  }

  private view(proc: ProcJob): RuntimeJob {
    const job: RuntimeJob = { spec: proc.spec, running: proc.exit === undefined, startedAt: proc.startedAt };
    if (proc.exit) job.exit = { ...proc.exit };
    return job;
  }

  /** Run the memory watchdog only while some running job has a memory limit. */
  private updateSampler(): void {
    const needed = [...this.jobs.values()].some((p) => !p.exit && p.spec.job.limits.memoryBytes !== undefined);
    if (needed && !this.sampler) {
      this.sampler = setInterval(() => void this.sampleMemory(), this.sampleMs);
      this.sampler.unref();
    } else if (!needed && this.sampler) {
      clearInterval(this.sampler);
      this.sampler = undefined;
    }
  }

  private async sampleMemory(): Promise<void> {
    const limited = new Map<number, ProcJob>();
    for (const p of this.jobs.values()) if (!p.exit && !p.oom && p.spec.job.limits.memoryBytes !== undefined) limited.set(p.pgid, p);
    if (limited.size === 0) return;
    const rss = await rssByGroup(new Set(limited.keys()));
    for (const [pgid, { bytes, pids }] of rss) {
      const proc = limited.get(pgid);
      const limit = proc?.spec.job.limits.memoryBytes;
      if (!proc || limit === undefined || bytes <= limit || proc.exit) continue;
      this.logger.warn('job over its memory limit: killed', { jobId: proc.spec.job.id, rssBytes: bytes, limitBytes: limit });
      proc.oom = true;
      killGroup(pgid, 'SIGKILL');
      // A job on a pty is in a session of its own (pty-helper.ts).
      for (const pid of pids) killProcess(pid);
    }
  }
}

/** A job's stdin as a pipe. */
function pipeStdio(stdin: Writable): JobStdio {
  stdin.on('error', () => {}); // a job that exits before reading its stdin
  return { write: (data) => void stdin.write(data), end: () => void stdin.end(), resize: async () => {} };
}

/**
 * A job on a pty (pty-helper.ts): its raw output is queued from the start (read before any await,
 * beside the line log) until the agent takes it; resizes go down the helper's control pipe.
 */
function ttyStdio(child: ChildProcess): JobStdio {
  const output = new AsyncQueue<OutputChunk>();
  let open = 0;
  for (const stream of ['stdout', 'stderr'] as const) {
    const source = child[stream];
    if (!source) continue;
    open++;
    source.on('data', (data: Buffer) => output.push({ stream, data }));
    source.once('close', () => --open === 0 && output.end());
  }
  const stdin = child.stdin as Writable;
  stdin.on('error', () => {});
  (child.stdio[3] as Writable | null)?.on('error', () => {});
  return { output, write: (data) => void stdin.write(data), end: () => void stdin.end(), resize: async (cols, rows) => resizePty(child, cols, rows) };
}

function keyOf(hostId: string, jobId: string): string {
  return `${hostId}/${jobId}`;
}

function toLine(r: Record_): LogLine {
  return { stream: r.stream, line: r.line, time: r.time };
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // the group is gone already
  }
}

function killProcess(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

/** Fields of /proc/<pid>/stat after the `(comm)`: state is [0], ppid [1], pgrp [2], session [3], rss (pages) [21]. */
async function statFields(pid: string): Promise<string[] | undefined> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  return text.slice(text.lastIndexOf(')') + 2).split(' ');
}

async function processGroupOf(pid: number): Promise<number | undefined> {
  const fields = await statFields(String(pid));
  return fields ? Number(fields[2]) : undefined;
}

/** The process groups of the processes whose working directory is `dir` (Linux /proc). */
async function groupsWorkingIn(dir: string): Promise<number[]> {
  const pids = (await readdir('/proc').catch(() => [] as string[])).filter((n) => /^\d+$/.test(n));
  const groups = new Set<number>();
  await Promise.all(
    pids.map(async (pid) => {
      if ((await readlink(`/proc/${pid}/cwd`).catch(() => undefined)) !== resolve(dir)) return;
      const pgrp = await processGroupOf(Number(pid));
      if (pgrp !== undefined && pgrp > 1) groups.add(pgrp);
    }),
  );
  return [...groups];
}

/**
 * Resident set size in bytes of each of `groups`, summed over the group's processes, and those
 * processes (Linux /proc). A job on a pty (pty-helper.ts) runs in a session of its own whose leader
 * is a child of the group's leader: its processes count for that group too.
 */
async function rssByGroup(groups: Set<number>): Promise<Map<number, { bytes: number; pids: number[] }>> {
  const pids = (await readdir('/proc').catch(() => [] as string[])).filter((n) => /^\d+$/.test(n));
  const stats = await Promise.all(
    pids.map(async (pid) => {
      const fields = await statFields(pid);
      return fields && { pid: Number(pid), ppid: Number(fields[1]), pgrp: Number(fields[2]), session: Number(fields[3]), bytes: Number(fields[21]) * PAGE_BYTES };
    }),
  );
  const ppidOf = new Map(stats.flatMap((st) => (st ? [[st.pid, st.ppid] as const] : [])));
  const totals = new Map<number, { bytes: number; pids: number[] }>();
  for (const st of stats) {
    if (!st) continue;
    const group = groups.has(st.pgrp) ? st.pgrp : ppidOf.get(st.session);
    if (group === undefined || !groups.has(group)) continue;
    const total = totals.get(group) ?? { bytes: 0, pids: [] };
    total.bytes += st.bytes;
    total.pids.push(st.pid);
    totals.set(group, total);
  }
  return totals;
}
