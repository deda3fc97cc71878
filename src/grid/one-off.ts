/** One-off jobs (`flynn run`): placed by the scheduler, attached to or followed on their host. */
import { AsyncQueue } from '../common/async-queue.js';
import { JobStartError } from '../controller/errors.js';
import type { AttachedJob, OneOffJobSpec, RunningJob } from '../controller/jobs.js';
import type { RunOutput } from '../controller/types.js';
import type { Scheduler } from '../scheduler/scheduler.js';
import type { ScheduledJob } from '../scheduler/types.js';
import { slugRunnerExec } from '../slug/runner.js';
import type { HostClients } from './host-clients.js';
import { notStarted, waitHostJob } from './host-job.js';

export interface OneOffJobsOptions {
  scheduler: Pick<Scheduler, 'runJob'>;
  hosts: HostClients;
  /** Image of one-off jobs of a release with a slug. */
  image: string;
  /** How long a one-off job may take to appear on its host, in ms. */
  appearMs: number;
}

export class OneOffJobs {
  constructor(private readonly o: OneOffJobsOptions) {}

  /** Run with stdin open (and a pseudo-terminal with `tty`), attached on its host once it started. */
  async attach(spec: OneOffJobSpec & { tty: boolean }, options: { signal?: AbortSignal } = {}): Promise<AttachedJob> {
    const placed = await this.o.scheduler.runJob({ ...this.request(spec), stdio: spec.tty ? 'tty' : 'pipe' });
    const client = this.o.hosts.get(placed.hostId);
    const job = await waitHostJob(client, placed.id, (j) => !notStarted(j), { appearMs: this.o.appearMs });
    if (job.state === 'failed') throw new JobStartError(job.error?.message ?? `job ${placed.id} failed to start`);
    const channel = await client.attach(placed.id, options);
    return { id: placed.id, channel, stop: () => client.stopJob(placed.id, { graceMs: 0 }).then(() => {}) };
  }

  /** Run without stdin: its output in order, then its exit status. */
  async run(spec: OneOffJobSpec, options: { signal?: AbortSignal } = {}): Promise<RunningJob> {
    const placed = await this.o.scheduler.runJob(this.request(spec));
    const output = new AsyncQueue<RunOutput>();
    void this.follow(placed, output, options.signal).catch((err: unknown) => {
      output.push({ kind: 'output', stream: 'stderr', data: `${(err as Error).message}\n` });
      output.push({ kind: 'exit', status: 1 });
      output.end();
    });
    return { id: placed.id, output };
  }

  /** What the scheduler runs for a one-off job: the release's slug (through the slug runner) with its env, or a Dockerfile app's image. */
  private request(spec: OneOffJobSpec): Parameters<Scheduler['runJob']>[0] {
    // A Dockerfile app's one-off job runs its command in the app's image, as `docker run` would.
    const slug = spec.artifactUrl !== null && spec.artifactType !== 'docker';
    const request: Parameters<Scheduler['runJob']>[0] = {
      app: spec.appId,
      release: spec.release.id,
      type: 'run',
      image: spec.artifactType === 'docker' && spec.artifactUrl ? spec.artifactUrl : this.o.image,
      cmd: slug ? slugRunnerExec(spec.cmd) : [...spec.cmd],
      env: { ...spec.env },
    };
    if (spec.memoryBytes !== undefined) request.memoryBytes = spec.memoryBytes;
    if (spec.artifactType === 'docker' && spec.archiveUrl) request.imageArchive = { url: spec.archiveUrl };
    if (slug && spec.artifactUrl) {
      request.artifact = { url: spec.artifactUrl, ...(spec.artifactSha256 === undefined ? {} : { sha256: spec.artifactSha256 }) };
      request.env = { ...request.env, SLUG_URL: spec.artifactUrl };
    }
    return request;
  }

  /** Stream a one-off job's output from its host, then its exit status. */
  private async follow(placed: ScheduledJob, output: AsyncQueue<RunOutput>, signal?: AbortSignal): Promise<void> {
    const client = this.o.hosts.get(placed.hostId);
    const onAbort = () => void client.stopJob(placed.id, { graceMs: 0 }).catch(() => {});
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      let job = await waitHostJob(client, placed.id, (j) => !notStarted(j), { appearMs: this.o.appearMs });
      if (job.state === 'failed') {
        output.push({ kind: 'output', stream: 'stderr', data: `${job.error?.message ?? 'the job failed to start'}\n` });
        output.push({ kind: 'exit', status: 1 });
        output.end();
        return;
      }
      for await (const l of client.logs(placed.id, { follow: true })) output.push({ kind: 'output', stream: l.stream, data: `${l.line}\n` });
      // The log stream ends with the job; its exit status follows shortly after.
      job = await waitHostJob(client, placed.id, (j) => Boolean(j.exit) || j.state === 'down' || j.state === 'crashed' || j.state === 'failed', { appearMs: this.o.appearMs });
      output.push({ kind: 'exit', status: job.exit?.code ?? (job.state === 'down' ? 0 : 1) });
      output.end();
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }
}
