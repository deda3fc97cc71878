import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { AsyncQueue } from '../../common/async-queue.js';
import { watchState } from '../../common/watch.js';
import { ObjectNotFoundError } from '../errors.js';
import type { AttachedJob, JobRunner, LogQuery, OneOffJobSpec, RunningJob } from '../jobs.js';
import { FrameType, framePipe } from '../../common/http/frames.js';
import { constants } from 'node:os';
import type { Store } from '../store.js';
import type { Formation, Job, LogLine, Release, RunOutput } from '../types.js';

export interface FakeClusterOptions {
  /** Formations are read from here (as the scheduler reads them through its FormationSource). */
  store: Store;
  /** Jobs for which this returns true come up `crashed` instead of `up`. Default never. */
  crashWhen?: (release: Release, type: string) => boolean;
  /** Most log lines kept per app. Default 1000. */
  maxLogLines?: number;
}

/**
 * An in-process stand-in for the scheduler + host agents, implementing the controller's
 * {@link JobRunner}: formation jobs appear instantly (as `up`, or `crashed` when `crashWhen` says
 * so); one-off jobs run as real local child processes with the release env, so `run` streams real
 * output and exit codes. For tests and single-process demos, not for production.
 */
export class FakeCluster implements JobRunner {
  private readonly jobs = new Map<string, Job[]>();
  private readonly processes = new Map<string, { kill(): void }>();
  private readonly logLines = new Map<string, LogLine[]>();
  private readonly followers = new Set<{ appId: string; query: LogQuery; queue: AsyncQueue<LogLine> }>();
  private readonly maxLogLines: number;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: FakeClusterOptions) {
    this.maxLogLines = options.maxLogLines ?? 1000;
  }

  async listJobs(appId: string): Promise<Job[]> {
    await this.reconcile(appId);
    return (this.jobs.get(appId) ?? []).map((j) => ({ ...j }));
  }

  /**
   * The app's jobs now and after each change of its formations in the store (jobs follow their
   * formations on the next read, as a scheduler's would).
   */
  watchJobs(appId: string, options: { signal?: AbortSignal } = {}): AsyncIterable<Job[]> {
    const { store } = this.options;
    return watchState(
      () => this.listJobs(appId),
      async (signal) =>
        (async function* () {
          for await (const e of store.watchEvents({ signal })) if (e.object === 'formation' && e.appId === appId) yield e;
        })(),
      options,
    );
  }

  async killJob(appId: string, jobId: string): Promise<void> {
    await this.reconcile(appId);
    const list = this.jobs.get(appId) ?? [];
    const job = list.find((j) => j.id === jobId);
    if (!job) throw new ObjectNotFoundError('job', jobId);
    this.processes.get(jobId)?.kill();
    this.jobs.set(appId, list.filter((j) => j.id !== jobId));
    this.log(appId, job, 'stderr', `job ${jobId} killed`);
  }

  async runJob(spec: OneOffJobSpec, options: { signal?: AbortSignal } = {}): Promise<RunningJob> {
    const [cmd, ...args] = spec.cmd;
    const job: Job = { id: randomUUID(), appId: spec.appId, releaseId: spec.release.id, type: 'run', state: 'up', cmd: spec.cmd, createdAt: new Date().toISOString() };
    const output = new AsyncQueue<RunOutput>();
    const child = spawn(cmd ?? 'true', args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...spec.env, APP: spec.appName }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.jobs.set(spec.appId, [...(this.jobs.get(spec.appId) ?? []), job]);
    this.processes.set(job.id, { kill: () => child.kill('SIGKILL') });
    const onAbort = () => child.kill('SIGKILL');
    options.signal?.addEventListener('abort', onAbort, { once: true });
    for (const stream of ['stdout', 'stderr'] as const) {
      child[stream].setEncoding('utf8');
      child[stream].on('data', (data: string) => {
        output.push({ kind: 'output', stream, data });
        for (const line of data.split('\n').filter(Boolean)) this.log(spec.appId, job, stream, line);
      });
    }
    const finish = (status: number) => {
      options.signal?.removeEventListener('abort', onAbort);
      this.processes.delete(job.id);
      this.jobs.set(spec.appId, (this.jobs.get(spec.appId) ?? []).filter((j) => j.id !== job.id));
      output.push({ kind: 'exit', status });
      output.end();
    };
    child.on('error', (err) => {
      output.push({ kind: 'output', stream: 'stderr', data: `${err.message}\n` });
      finish(127);
    });
    child.on('close', (code, signal) => finish(code ?? (signal ? 128 + 9 : 1)));
    return { id: job.id, output };
  }

  /** An interactive run as a local child process with piped stdin: no tty (its size frames are ignored). */
  async attachJob(spec: OneOffJobSpec & { tty: boolean }): Promise<AttachedJob> {
    const [cmd, ...args] = spec.cmd;
    const job: Job = { id: randomUUID(), appId: spec.appId, releaseId: spec.release.id, type: 'run', state: 'up', cmd: spec.cmd, createdAt: new Date().toISOString() };
    const [controllerSide, hostSide] = framePipe();
    const child = spawn(cmd ?? 'true', args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...spec.env, APP: spec.appName }, stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin.on('error', () => {});
    this.jobs.set(spec.appId, [...(this.jobs.get(spec.appId) ?? []), job]);
    this.processes.set(job.id, { kill: () => child.kill('SIGKILL') });
    void (async () => {
      for await (const f of hostSide) {
        if (f.type === FrameType.stdin) child.stdin.write(f.data);
        else if (f.type === FrameType.eof) child.stdin.end();
        else if (f.type === FrameType.signal) child.kill(f.data.toString() as NodeJS.Signals);
      }
    })().catch(() => {});
    child.stdout.on('data', (data: Buffer) => hostSide.send(FrameType.stdout, data));
    child.stderr.on('data', (data: Buffer) => hostSide.send(FrameType.stderr, data));
    const finish = (status: number) => {
      this.processes.delete(job.id);
      this.jobs.set(spec.appId, (this.jobs.get(spec.appId) ?? []).filter((j) => j.id !== job.id));
      hostSide.finish(FrameType.exit, { status });
    };
    child.on('error', (err) => {
      hostSide.send(FrameType.stderr, `${err.message}\n`);
      finish(127);
    });
    child.on('close', (code, signal) => finish(code ?? (signal ? 128 + (signalNumber(signal) ?? 9) : 1)));
    return { id: job.id, channel: controllerSide, stop: async () => void child.kill('SIGKILL') };
  }

  async logs(appId: string, query: LogQuery): Promise<AsyncIterable<LogLine>> {
    const history = (this.logLines.get(appId) ?? []).filter((l) => matches(l, query));
    const known = query.jobId === undefined || history.some((l) => l.jobId === query.jobId) || (this.jobs.get(appId) ?? []).some((j) => j.id === query.jobId);
    if (!known) throw new ObjectNotFoundError('job', query.jobId ?? '');
    const queue = new AsyncQueue<LogLine>(() => this.followers.delete(follower));
    const follower = { appId, query, queue };
    for (const line of query.lines === undefined ? history : history.slice(-query.lines)) queue.push(line);
    if (!query.follow) queue.end();
    else {
      this.followers.add(follower);
      query.signal?.addEventListener('abort', () => queue.end(), { once: true });
    }
    return queue;
  }

  /** Make the jobs of an app match its formations, as a scheduler would (one pass at a time). */
  private reconcile(appId: string): Promise<void> {
    const run = this.chain.then(() => this.reconcileNow(appId));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async reconcileNow(appId: string): Promise<void> {
    let formations: Formation[];
    try {
      formations = await this.options.store.listFormations(appId);
    } catch {
      formations = [];
    }
    const current = this.jobs.get(appId) ?? [];
    const next: Job[] = current.filter((j) => j.type === 'run');
    for (const f of formations) {
      let release: Release | undefined;
      for (const [type, count] of Object.entries(f.processes)) {
        const have = current.filter((j) => j.releaseId === f.releaseId && j.type === type);
        next.push(...have.slice(0, count));
        for (const extra of have.slice(count)) this.log(appId, extra, 'stderr', `stopping ${type} job`);
        for (let i = have.length; i < count; i++) {
          release ??= await this.options.store.getRelease(appId, f.releaseId);
          const crashed = this.options.crashWhen?.(release, type) ?? false;
          const job: Job = { id: randomUUID(), appId, releaseId: f.releaseId, type, state: crashed ? 'crashed' : 'up', cmd: release.processes[type]?.cmd ?? [], createdAt: new Date().toISOString() };
          next.push(job);
          this.log(appId, job, 'stdout', `${type} job of release v${release.version} ${crashed ? 'crashed on start' : 'up'}`);
        }
      }
    }
    this.jobs.set(appId, next);
  }

  private log(appId: string, job: Job, stream: 'stdout' | 'stderr', msg: string): void {
    const line: LogLine = { jobId: job.id, type: job.type, stream, msg, time: new Date().toISOString() };
    const lines = this.logLines.get(appId) ?? [];
    lines.push(line);
    if (lines.length > this.maxLogLines) lines.splice(0, lines.length - this.maxLogLines);
    this.logLines.set(appId, lines);
    for (const f of this.followers) if (f.appId === appId && matches(line, f.query)) f.queue.push(line);
  }
}

function matches(line: LogLine, query: LogQuery): boolean {
  return (query.jobId === undefined || line.jobId === query.jobId) && (query.type === undefined || line.type === query.type);
}

function signalNumber(name: NodeJS.Signals): number | undefined {
  return constants.signals[name];
}
