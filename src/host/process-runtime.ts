/**
 * Jobs as plain processes, for machines without Docker. Each job runs in its own working directory
 * and its own session and process group, so stop and signals reach every process it forked.
 *
 * A job without stdin is detached (it outlives its agent, as a Docker container does): its stdout
 * and stderr go to files in its job dir, which the runtime follows line by line into
 * `<dir>/output.ndjson` (tail and follow read that), and a `/bin/sh` wrapper writes its exit code
 * to `<dir>/exit` when it ends. Its record `job.json` is written before the spawn, then again with
 * the pid and the process's start time: a new agent adopts a job whose pid is alive with that start
 * time (not a later process that got the pid), follows its output from where the last recorded line
 * ended, and reports a job that ended meanwhile with the code in `exit` (`unknown` without one). A
 * job with stdin (`flynn run`, a terminal) talks to its agent over pipes and dies with it.
 *
 * What is enforced (see docs/host.md): the memory limit, by a watchdog that sums the resident set
 * size of the job's process group every `memorySampleMs` and SIGKILLs the group when it is over
 * (reported as `oom`) — a spike shorter than one sample can pass. Not enforced: `cpuShares`,
 * network isolation, filesystem isolation, and `image` (the command runs on the host directly).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants as fsConstants, createWriteStream, type WriteStream } from 'node:fs';
import { access, appendFile, chmod, mkdir, open, readdir, readFile, rm } from 'node:fs/promises';
import { constants, tmpdir } from 'node:os';
import { delimiter, join, resolve as resolvePath } from 'node:path';
import { createInterface } from 'node:readline';
import type { Writable } from 'node:stream';
import { writeFileAtomic } from '../common/atomic-file.js';
import { CloseGuard, settlesWithin } from '../common/lifecycle.js';
import type { Logger } from '../common/logger.js';
import { silentLogger } from '../common/logger.js';
import { JobExistsError, JobNotRunningError, RuntimeError } from './errors.js';
import { EventFanout } from './event-fanout.js';
import { AsyncQueue } from '../common/async-queue.js';
import { OutputTail } from './output-tail.js';
import { groupsWorkingIn, processGroupOf, rssByGroup, startTimeOf } from './proc-stat.js';
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
  /** A detached job's line: the byte offset just after it in its `stdout`/`stderr` file (where a new agent resumes). */
  end?: number;
}

/** What `job.json` holds: the spec first (before the spawn), then the pid and its start time. */
interface JobFile {
  spec: RuntimeJobSpec;
  pid?: number;
  /** The pid's start time in /proc (proc-stat.ts): tells the job from a later process with its pid. */
  startTime?: string;
  startedAt?: string;
  /** Outlives its agent (no stdin): adopted by the next one. */
  detached?: boolean;
}

/** How the spawned process ended, as Node saw it; undefined when it was not our child (adopted). */
type RawExit = { code: number | null; signal: NodeJS.Signals | null } | undefined;

interface ProcJob {
  spec: RuntimeJobSpec;
  dir: string;
  pgid: number;
  startedAt: string;
  detached: boolean;
  exit?: ExitStatus;
  done: Promise<ExitStatus>;
  killed: boolean;
  oom: boolean;
  seq: number;
  out: WriteStream;
  /** Lines written to `out` whose write has not completed yet. */
  unflushed: Record_[];
  lines: EventFanout<Record_>;
  /** A detached job's output files being followed. */
  tails: OutputTail[];
  /** Stops watching a detached job that keeps running (the runtime closes). */
  release?: () => void;
}

/**
 * The wrapper of a detached job: `sh -c WRAPPER flynn-job EXIT_FILE CMD...`. It runs the command in
 * the foreground and writes its exit status to EXIT_FILE (temp + rename), for an agent that is not its
 * parent. The traps keep it alive through the signals the job gets (a trap runs after the command
 * ends); the command itself starts with the default handlers. SIGKILL ends both: no exit file.
 */
const WRAPPER = 'trap : HUP INT QUIT TERM USR1 USR2; f=$1; shift; "$@"; c=$?; echo $c > "$f.tmp" && mv "$f.tmp" "$f"; exit $c';

/** How often an adopted job (not our child) is checked for its end, in ms. */
const ADOPTED_POLL_MS = 250;
/** How often a detached job's output files are read when no change was signalled, in ms. */
const TAIL_POLL_MS = 500;

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
    const detached = job.stdin !== true;
    if (tty) env.TERM ??= 'xterm';
    if (detached && !(await executable(job.cmd[0] as string, env.PATH ?? '', dir))) {
      await rm(dir, { recursive: true, force: true });
      throw new RuntimeError(`cannot start job ${job.id}: spawn ${job.cmd[0]} ENOENT (not an executable in the job's PATH)`);
    }
    const [file, args] = tty ? ptyCommand(this.python, job.cmd) : detached ? ['/bin/sh', ['-c', WRAPPER, 'flynn-job', join(dir, 'exit'), ...job.cmd]] : [job.cmd[0] as string, job.cmd.slice(1)];
    // The record goes first (an intent without a pid): a crash between it and the spawn leaves a
    // record `recover` finds, never a process nothing knows about.
    await writeFileAtomic(join(dir, 'job.json'), JSON.stringify({ spec, detached } satisfies JobFile), { mode: 0o600 });
    const out = createWriteStream(join(dir, 'output.ndjson'), { flags: 'a', mode: 0o600 });
    out.on('error', (err) => this.logger.warn('cannot write job output', { jobId: job.id, err: err.message }));
    const files = detached ? await Promise.all(['stdout', 'stderr'].map((name) => open(join(dir, name), 'a', 0o600))) : [];
    const child = spawn(file, args, { cwd: dir, env, detached: true, stdio: tty ? [...PTY_STDIO] : detached ? ['ignore', files[0]!.fd, files[1]!.fd] : ['pipe', 'pipe', 'pipe'] });
    const spawned = new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    // The job has its own copies of the files now.
    const closed = Promise.all(files.map((f) => f.close()));
    if (detached) child.unref();
    if (child.stdin) {
      this.stdio.set(key, tty ? ttyStdio(child) : pipeStdio(child.stdin));
      // A pty's output waits for the agent even after a quick exit (as Docker's attach does).
      if (!tty) child.once('exit', () => this.stdio.delete(key));
    }
    // Caught before any await: a job that exits at once must not be missed.
    const exited = new Promise<RawExit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    const startedAt = new Date().toISOString();
    const proc: ProcJob = { spec, dir, pgid: child.pid ?? 0, startedAt, detached, done: Promise.resolve({ code: 0, reason: 'exit' }), killed: false, oom: false, seq: 0, out, unflushed: [], lines: new EventFanout(), tails: [] };
    // Read the output before any await too: once the child has exited, Node resumes (drains and
    // discards) every stdio stream that has no reader yet, so a quick job's output would be lost.
    const piped = Promise.all(
      (['stdout', 'stderr'] as const).map(async (stream) => {
        const source = child[stream];
        if (!source) return;
        for await (const line of createInterface({ input: source, crlfDelay: Infinity })) this.record(proc, stream, line);
      }),
    ).catch(() => {});
    try {
      await spawned;
    } catch (err) {
      await new Promise<void>((r) => out.end(r));
      await rm(dir, { recursive: true, force: true });
      this.stdio.delete(key);
      if (tty && (err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new RuntimeError(`cannot start job ${job.id}: a terminal on the process runtime needs python3 on the host (${this.python} not found); without a terminal (piped stdin) it runs`, { cause: err });
      }
      throw new RuntimeError(`cannot start job ${job.id}: ${(err as Error).message}`, { cause: err });
    }
    this.jobs.set(key, proc);
    await closed;
    const startTime = await startTimeOf(proc.pgid);
    await writeFileAtomic(join(dir, 'job.json'), JSON.stringify({ spec, detached, pid: proc.pgid, startedAt, ...(startTime ? { startTime } : {}) } satisfies JobFile), { mode: 0o600 });
    if (detached) this.followFiles(proc, { stdout: 0, stderr: 0 });
    this.watchEnd(proc, exited, () => (detached ? Promise.all(proc.tails.map((t) => t.finish())) : piped));
    this.updateSampler();
    return this.view(proc);
  }

  /** Follow a detached job's output files from the given offsets into its line log. */
  private followFiles(proc: ProcJob, from: Record<'stdout' | 'stderr', number>): void {
    proc.tails = (['stdout', 'stderr'] as const).map((stream) => new OutputTail(join(proc.dir, stream), from[stream], (line, end) => this.record(proc, stream, line, end)));
    for (const t of proc.tails) t.start(TAIL_POLL_MS);
  }

  /** Once `ended` settles: end stragglers, read the last output, record and publish the exit. */
  private watchEnd(proc: ProcJob, ended: Promise<RawExit>, outputDone: () => Promise<unknown>): void {
    const { hostId, job } = proc.spec;
    let released = false;
    const previous = proc.release;
    proc.release = () => {
      released = true;
      previous?.();
      for (const t of proc.tails) t.stop();
      proc.out.end();
    };
    proc.done = ended.then(async (raw) => {
      if (released) return new Promise<ExitStatus>(() => {});
      // Stragglers the job forked die with it, so its pipes close. Not for a job that was not our
      // child: its pid may belong to another process by now.
      if (raw) killGroup(proc.pgid, 'SIGKILL');
      const reason = proc.oom ? 'oom' : proc.killed ? 'killed' : 'exit';
      const exit: ExitStatus = raw ? { code: raw.code ?? 128 + (raw.signal ? (constants.signals[raw.signal] ?? 9) : 9), reason } : await exitFromFile(proc.dir, reason);
      await settlesWithin(outputDone(), 2000);
      await new Promise<void>((r) => proc.out.end(r));
      proc.exit = exit;
      proc.lines.end();
      this.updateSampler();
      this.fanout.publish({ type: 'exit', hostId, jobId: job.id, exit });
      return exit;
    });
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
   * Adopt the detached jobs a previous agent of `hostId` left (found by their `job.json`): a live one
   * (its pid with the recorded start time) is followed again, one that ended meanwhile is reported
   * with the code its wrapper wrote (`unknown` without one). Jobs with stdin cannot be re-attached:
   * their process groups are killed and their directories removed, as are records without a pid
   * (the agent died while spawning) or unreadable ones, whose processes are found by their working directory.
   */
  async recover(hostId: string): Promise<RuntimeJob[]> {
    this.guard.assertOpen();
    const hostDir = join(this.baseDir, hostId);
    const entries = await readdir(hostDir).catch(() => [] as string[]);
    const ending: Promise<unknown>[] = [];
    for (const jobId of entries) {
      if (this.jobs.has(keyOf(hostId, jobId))) continue;
      const dir = join(hostDir, jobId);
      const meta = await readFile(join(dir, 'job.json'), 'utf8').then(
        (t) => JSON.parse(t) as JobFile,
        () => undefined,
      ).catch(() => {
        // Torn (a disk fault, an edit: it is written atomically): treated as a record without a pid.
        this.logger.warn('unreadable job record: stopping its job, the scheduler starts it again', { jobId, file: join(dir, 'job.json') });
        return undefined;
      });
      if (meta?.detached && typeof meta.pid === 'number' && meta.spec?.hostId === hostId) {
        ending.push(this.adopt(meta as JobFile & { pid: number }, dir));
        continue;
      }
      const groups = typeof meta?.pid === 'number' ? ((await processGroupOf(meta.pid)) === meta.pid ? [meta.pid] : []) : await groupsWorkingIn(dir);
      for (const pgid of groups) {
        this.logger.warn('killing a job left by a previous agent', { jobId, pid: pgid });
        killGroup(pgid, 'SIGKILL');
      }
      await rm(dir, { recursive: true, force: true });
    }
    // Jobs that ended while no agent watched are listed ended, not running.
    await Promise.all(ending);
    return this.list(hostId);
  }

  /** Follow a detached job again; resolves at once when it is running, once it is recorded ended otherwise. */
  private async adopt(meta: JobFile & { pid: number }, dir: string): Promise<void> {
    const { spec, pid } = meta;
    const alive = meta.startTime !== undefined && (await startTimeOf(pid)) === meta.startTime;
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
    const out = createWriteStream(join(dir, 'output.ndjson'), { flags: 'a', mode: 0o600 });
    out.on('error', (err) => this.logger.warn('cannot write job output', { jobId: spec.job.id, err: err.message }));
    const proc: ProcJob = { spec, dir, pgid: pid, startedAt: meta.startedAt ?? new Date().toISOString(), detached: true, done: Promise.resolve({ code: 0, reason: 'exit' }), killed: false, oom: false, seq, out, unflushed: [], lines: new EventFanout(), tails: [] };
    this.jobs.set(keyOf(spec.hostId, spec.job.id), proc);
    this.followFiles(proc, from);
    const ended = alive ? this.untilGone(proc, meta.startTime as string) : Promise.resolve(undefined);
    this.watchEnd(proc, ended, () => Promise.all(proc.tails.map((t) => t.finish())));
    this.logger.info(alive ? 'adopted a running job' : 'a job ended while no agent watched it', { jobId: spec.job.id, pid });
    this.updateSampler();
    if (!alive) await proc.done;
  }

  /** Resolves once the process `proc.pgid` with `startTime` is gone (it is not our child: polled). */
  private untilGone(proc: ProcJob, startTime: string): Promise<RawExit> {
    return new Promise((resolve) => {
      const timer = setInterval(() => {
        void startTimeOf(proc.pgid).then((t) => {
          if (t === startTime) return;
          clearInterval(timer);
          resolve(undefined);
        });
      }, ADOPTED_POLL_MS);
      timer.unref();
      const release = proc.release;
      proc.release = () => {
        clearInterval(timer);
        release?.();
      };
    });
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

  /** Stop watching; detached jobs keep running (a new runtime's `recover` adopts them), jobs with stdin are killed. */
  close(): Promise<void> {
    return this.guard.close(async () => {
      const attached = [...this.jobs.values()].filter((p) => !p.exit && !p.detached);
      for (const proc of attached) {
        proc.killed = true;
        killGroup(proc.pgid, 'SIGKILL');
      }
      // Detached jobs keep running: the next agent on this base dir adopts them.
      for (const proc of this.jobs.values()) if (!proc.exit && proc.detached) proc.release?.();
      await Promise.all(attached.map((p) => p.done));
      if (this.sampler) clearInterval(this.sampler);
      this.fanout.end();
    });
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  private record(proc: ProcJob, stream: 'stdout' | 'stderr', line: string, end?: number): void {
    const r: Record_ = { seq: ++proc.seq, stream, line, time: new Date().toISOString(), ...(end === undefined ? {} : { end }) };
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

/** Whether `command` names an executable file, as a spawn would look it up in `path` from `cwd`. */
async function executable(command: string, path: string, cwd: string): Promise<boolean> {
  const candidates = command.includes('/') ? [resolvePath(cwd, command)] : path.split(delimiter).filter((d) => d !== '').map((d) => resolvePath(cwd, d, command));
  for (const file of candidates) if (await access(file, fsConstants.X_OK).then(() => true, () => false)) return true;
  return false;
}

/** The exit status a detached job's wrapper wrote, or `unknown` (code -1) without one (the wrapper was killed too). */
async function exitFromFile(dir: string, reason: ExitStatus['reason']): Promise<ExitStatus> {
  const text = await readFile(join(dir, 'exit'), 'utf8').catch(() => undefined);
  if (text !== undefined && /^\d+$/.test(text.trim())) return { code: Number(text.trim()), reason };
  return reason === 'exit' ? { code: -1, reason: 'unknown' } : { code: 137, reason };
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
