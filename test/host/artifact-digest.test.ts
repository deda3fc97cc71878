/** The host checks a slug's sha256 while it downloads it: a damaged slug fails in one line that names it and says how to fix it. */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobArtifacts } from '../../src/host/artifacts.js';
import { ArtifactFetchError } from '../../src/host/errors.js';

// Several chunks, so the hash covers a stream and not one buffer.
const SLUG = Buffer.alloc(3 * 1024 * 1024 + 17, 'slug bytes ');
const DIGEST = createHash('sha256').update(SLUG).digest('hex');
let server: Server;
let url: string;
let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'flynn-ts-artifact-digest-'));
  server = createServer((req, res) => {
    // A truncated slug: what a torn shelf file serves.
    res.end(req.url?.includes('truncated') ? SLUG.subarray(0, 1000) : SLUG);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/slugs/shop`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await rm(root, { recursive: true, force: true });
});

describe('the sha256 check of a downloaded slug', () => {
  const artifacts = () => new JobArtifacts({ root, hostId: 'h1', timeoutMs: 10_000 });

  it('keeps a slug whose digest is the recorded one', async () => {
    const path = await artifacts().fetch('job-ok', { url: `${url}/good.tgz?sig=x`, sha256: DIGEST });
    expect((await readFile(path)).equals(SLUG)).toBe(true);
  });

  it('fails a damaged slug with one line naming it, both digests and the fix', async () => {
    const found = createHash('sha256').update(SLUG.subarray(0, 1000)).digest('hex');
    const err = await artifacts().fetch('job-bad', { url: `${url}/truncated.tgz?sig=secret`, sha256: DIGEST }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ArtifactFetchError);
    const message = (err as ArtifactFetchError).message;
    expect(message).not.toContain('\n');
    expect(message).toBe(
      `the slug /slugs/shop/truncated.tgz is damaged (sha256 ${found}, expected ${DIGEST}): push the app again, \`flynn rollback\` to a release built before it, or restore shelf from a \`flynn cluster backup\``,
    );
    // Retrying the same download cannot help.
    expect((err as ArtifactFetchError).retryable).toBe(false);
  });

  it('does not check a slug whose artifact records no digest', async () => {
    const path = await artifacts().fetch('job-any', { url: `${url}/truncated.tgz` });
    expect((await readFile(path)).length).toBe(1000);
  });
});
