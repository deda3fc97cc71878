import { resolveJobId } from '../job-ref.js';
import { oneOffSpec } from '../run-attach.js';
import * as S from '../schemas.js';
import type { RunJobInput } from '../types.js';
import type { ApiDeps, ApiServer, Req } from './deps.js';

/** `/apps/:app/jobs` (list, watch, kill, run one-off) and `/apps/:app/log`. Interactive runs are an upgrade (run-attach.ts). */
export function registerJobRoutes(r: ApiServer, { store, jobs, app, checkEnvSize, sse }: ApiDeps): void {
  r.get('/apps/:app/jobs', async (req: Req<{ app: string }, unknown, { watch?: string; all?: string }>, reply) => {
    const a = await app(req.params.app);
    if (req.query.watch !== '1' && req.query.watch !== 'true') return jobs.listJobs(a.id, { all: req.query.all === '1' || req.query.all === 'true' });
    // `watch`: the jobs now and after each change, as `jobs` events (what `flynn scale` waits on).
    const abort = new AbortController();
    const writer = sse(req, reply);
    void writer.closed.then(() => abort.abort());
    let n = 0;
    try {
      for await (const list of jobs.watchJobs(a.id, { signal: abort.signal })) writer.sendJson('jobs', list, String(n++));
    } catch (err) {
      if (!abort.signal.aborted) writer.sendError(err, String(n++));
    }
    writer.end();
    return reply;
  });
  r.delete('/apps/:app/jobs/:job', async (req: Req<{ app: string; job: string }>, reply) => {
    const a = await app(req.params.app);
    await jobs.killJob(a.id, await resolveJobId(jobs, a.id, req.params.job));
    return reply.status(204).send();
  });
  r.post('/apps/:app/jobs', { schema: { body: S.runJobBody } }, async (req: Req<{ app: string }, RunJobInput>, reply) => {
    const abort = new AbortController();
    const job = await jobs.runJob(await oneOffSpec(store, req.params.app, req.body, checkEnvSize), { signal: abort.signal });
    if (!req.body.attach) {
      void (async () => { for await (const _ of job.output) { /* drain */ } })().catch(() => undefined);
      reply.status(201);
      return { id: job.id };
    }
    const writer = sse(req, reply);
    void writer.closed.then(() => abort.abort(new Error('client detached')));
    let n = 0;
    writer.sendJson('job', { id: job.id }, String(n++));
    try {
      for await (const out of job.output) {
        if (writer.isClosed) break;
        if (out.kind === 'output') writer.sendJson('output', { stream: out.stream, data: out.data }, String(n++));
        else writer.sendJson('exit', { status: out.status }, String(n++));
      }
    } catch (err) {
      writer.sendError(err, String(n++));
    }
    writer.end();
    return reply;
  });

  r.get('/apps/:app/log', { schema: { querystring: S.logQuery } }, async (req: Req<{ app: string }, unknown, { job?: string; type?: string; follow?: string; lines?: string }>, reply) => {
    const a = await app(req.params.app);
    const abort = new AbortController();
    const follow = req.query.follow === '1' || req.query.follow === 'true';
    const jobId = req.query.job ? await resolveJobId(jobs, a.id, req.query.job) : undefined;
    const lines = await jobs.logs(a.id, { ...(jobId !== undefined ? { jobId } : {}), ...(req.query.type ? { type: req.query.type } : {}), ...(req.query.lines ? { lines: Number(req.query.lines) } : {}), follow, signal: abort.signal });
    const writer = sse(req, reply);
    void writer.closed.then(() => abort.abort(new Error('client went away')));
    let n = 0;
    try {
      for await (const line of lines) {
        if (writer.isClosed) break;
        writer.sendJson('log', line, String(n++));
      }
      writer.sendJson('end', {}, String(n++));
    } catch (err) {
      if (!abort.signal.aborted) writer.sendError(err, String(n++));
    }
    writer.end();
    return reply;
  });
}
