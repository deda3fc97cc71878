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
import { Sha256Tap } from '../common/sha256-tap.js';
import { ArtifactFetchError } from './errors.js';
import { ensurePrivateDir } from './private-dir.js';
import type { JobArtifact } from './types.js';

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

  /**
   * Download a job's artifact onto the host; returns its path. With `sha256`, the file is hashed as
   * it is written and a different digest fails the fetch (the file is left for `remove`). Throws an
   * {@link ArtifactFetchError}.
   */
  async fetch(jobId: string, { url, sha256 }: JobArtifact): Promise<string> {
    const dir = this.dir(jobId);
    const path = join(dir, 'slug.tgz');
    // 0700: other users of the host cannot read an app's code (the file itself stays readable by
    // whichever user the job runs as inside its container).
    await (this.rootReady ??= ensurePrivateDir(this.options.root, 'artifactsDir'));
    await mkdir(dir, { recursive: true, mode: 0o700 });
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(this.options.timeoutMs) });
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      const tap = new Sha256Tap();
      await pipeline(Readable.fromWeb(res.body as ReadableStream), tap, createWriteStream(path));
      if (sha256 !== undefined && tap.digest() !== sha256) throw new DamagedArtifact(url, sha256, tap.digest());
      // Readable by the job's unprivileged user in its container (the 0700 directory keeps the host's other users out).
      await chmod(path, 0o644);
    } catch (err) {
      if (err instanceof DamagedArtifact) throw new ArtifactFetchError(err.message, { retryable: false });
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

/** A downloaded artifact whose digest is not the recorded one: the one line says which slug and how to fix it. */
class DamagedArtifact extends Error {
  constructor(url: string, expected: string, found: string) {
    super(
      `the slug ${new URL(url).pathname} is damaged (sha256 ${found}, expected ${expected}): ` +
        'push the app again, `flynn rollback` to a release built before it, or restore shelf from a `flynn cluster backup`',
    );
  }
}
