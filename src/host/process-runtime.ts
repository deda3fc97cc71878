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
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { chmod, mkdir, open, readdir, readFile, rm } from 'node:fs/promises';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { writeFileAtomic } from '../common/atomic-file.js';
import { CloseGuard, settlesWithin } from '../common/lifecycle.js';
import type { Logger } from '../common/logger.js';
import { silentLogger } from '../common/logger.js';
import { JobExistsError, JobNotRunningError, RuntimeError } from './errors.js';
import { EventFanout } from './event-fanout.js';
import { OutputTail } from './output-tail.js';
import { groupsWorkingIn, processGroupOf, startTimeOf } from './proc-stat.js';
import { exitFromFile, keyOf, killGroup, recordLine, viewOf, type JobFile, type ProcJob, type RawExit } from './process-job.js';
import { jobLines, resumePoint } from './process-logs.js';
import { MemoryWatchdog } from './process-memory.js';
import { executable, pipeStdio, ttyStdio } from './process-stdio.js';
import { ptyCommand, PTY_STDIO } from './pty-helper.js';
import { ensurePrivateDir } from './private-dir.js';
import type { JobStdio, LogOptions, Runtime, RuntimeEvent, RuntimeJob, RuntimeJobSpec, StopOptions } from './runtime.js';
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
  private readonly inheritEnv: readonly string[];
  private readonly python: string;
  private readonly logger: Logger;
  private readonly guard = new CloseGuard('process runtime');
  private readonly fanout = new EventFanout<RuntimeEvent>();
  private readonly jobs = new Map<string, ProcJob>();
  /** Stdio of running jobs started with `stdin`, until an agent takes it. */
  private readonly stdio = new Map<string, JobStdio>();
  private readonly watchdog: MemoryWatchdog;
  private baseReady: Promise<void> | undefined;

  constructor(options: ProcessRuntimeOptions = {}) {
    this.baseDir = options.baseDir ?? PROCESS_RUNTIME_DEFAULTS.baseDir;
    this.inheritEnv = options.inheritEnv ?? PROCESS_RUNTIME_DEFAULTS.inheritEnv;
    this.python = options.python ?? PROCESS_RUNTIME_DEFAULTS.python;
    this.logger = (options.logger ?? silentLogger).child({ component: 'process-runtime' });
    this.watchdog = new MemoryWatchdog(this.jobs, options.memorySampleMs ?? PROCESS_RUNTIME_DEFAULTS.memorySampleMs, this.logger);
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
        for await (const line of createInterface({ input: source, crlfDelay: Infinity })) recordLine(proc, stream, line);
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
    this.watchdog.update();
    return viewOf(proc);
  }

  /** Follow a detached job's output files from the given offsets into its line log. */
  private followFiles(proc: ProcJob, from: Record<'stdout' | 'stderr', number>): void {
    proc.tails = (['stdout', 'stderr'] as const).map((stream) => new OutputTail(join(proc.dir, stream), from[stream], (line, end) => recordLine(proc, stream, line, end)));
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
      this.watchdog.update();
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
    return proc && viewOf(proc);
  }

  async list(hostId: string): Promise<RuntimeJob[]> {
    this.guard.assertOpen();
    return [...this.jobs.values()].filter((p) => p.spec.hostId === hostId).map((p) => viewOf(p));
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
    const { from, seq } = await resumePoint(dir);
    const out = createWriteStream(join(dir, 'output.ndjson'), { flags: 'a', mode: 0o600 });
    out.on('error', (err) => this.logger.warn('cannot write job output', { jobId: spec.job.id, err: err.message }));
    const proc: ProcJob = { spec, dir, pgid: pid, startedAt: meta.startedAt ?? new Date().toISOString(), detached: true, done: Promise.resolve({ code: 0, reason: 'exit' }), killed: false, oom: false, seq, out, unflushed: [], lines: new EventFanout(), tails: [] };
    this.jobs.set(keyOf(spec.hostId, spec.job.id), proc);
    this.followFiles(proc, from);
    const ended = alive ? this.untilGone(proc, meta.startTime as string) : Promise.resolve(undefined);
    this.watchEnd(proc, ended, () => Promise.all(proc.tails.map((t) => t.finish())));
    this.logger.info(alive ? 'adopted a running job' : 'a job ended while no agent watched it', { jobId: spec.job.id, pid });
    this.watchdog.update();
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
    yield* jobLines(proc, options);
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
      this.watchdog.stop();
      this.fanout.end();
    });
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

}

