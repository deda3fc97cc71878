/**
 * Job artifacts on the host: a job's slug is downloaded to `<root>/<hostId>/<jobId>/slug.tgz`
 * before the job starts and removed with the job.
 */
import { createWriteStream } from 'node:fs';
import { chmod, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { ReadableStream } from 'node:stream/web';
import { pipeline } from 'node:stream/promises';
import { ArtifactFetchError } from './errors.js';
import { ensurePrivateDir } from './private-dir.js';

export interface JobArtifactsOptions {
  /** The directory all hosts' artifacts go under (made 0700 on first use). */
  root: string;
  hostId: string;
  /** How long downloading one artifact may take, in ms. */
  timeoutMs: number;
}

export class JobArtifacts {
  private rootReady: Promise<void> | undefined;

  constructor(private readonly options: JobArtifactsOptions) {}

  /** Download a job's artifact onto the host; returns its path. Throws an {@link ArtifactFetchError}. */
  async fetch(jobId: string, url: string): Promise<string> {
    const dir = this.dir(jobId);
    const path = join(dir, 'slug.tgz');
    // 0700: other users of the host cannot read an app's code (the file itself stays readable by
    // whichever user the job runs as inside its container).
    await (this.rootReady ??= ensurePrivateDir(this.options.root, 'artifactsDir'));
    await mkdir(dir, { recursive: true, mode: 0o700 });
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(this.options.timeoutMs) });
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      await pipeline(Readable.fromWeb(res.body as ReadableStream), createWriteStream(path));
      // Readable by the job's unprivileged user in its container (the 0700 directory keeps the host's other users out).
      await chmod(path, 0o644);
    } catch (err) {
      throw new ArtifactFetchError(`cannot fetch the artifact of job ${jobId} from ${url}: ${(err as Error).message}`, { cause: err });
    }
    return path;
  }

  /** Remove a job's artifact (nothing when it has none). */
  async remove(jobId: string): Promise<void> {
    await rm(this.dir(jobId), { recursive: true, force: true }).catch(() => {});
  }

  private dir(jobId: string): string {
    return join(this.options.root, this.options.hostId, jobId);
  }
}
