/**
 * `POST /apps/:app/deploy-git` (Taffy): the platform fetches a git URL and deploys it through the
 * same build → release → deploy path as a `git push`, and the build's lines stream back as SSE
 * `output` events, ended by `done` or by one `error` event that says why. A URL or ref that is
 * refused, an unknown app, or a cluster without a deployer is a plain 4xx/503 before any stream.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FlynnError, UnavailableError } from '../../common/errors.js';
import type { SseWriter } from '../../common/http/sse.js';
import { ControllerErrorCodes, DeployFailedError } from '../errors.js';
import * as S from '../schemas.js';
import type { Store } from '../store.js';
import type { DeployGitInput } from '../types.js';

/** What the controller needs to deploy from a git URL; the platform gives one (src/taffy). */
export interface GitSourceDeployer {
  /** Refuse a URL or ref before anything streams: throws a 4xx {@link FlynnError}. */
  check(source: DeployGitInput): void;
  /**
   * Fetch and deploy `app`. Lines go to `output` as they come; a failure throws with one line
   * (the app's current release keeps serving).
   */
  deploy(app: string, source: DeployGitInput, io: { output: (line: string) => void; signal: AbortSignal }): Promise<void>;
}

export interface DeployGitRouteOptions {
  store: Store;
  /** Undefined: the endpoint answers 503 (a controller started without a builder). */
  deployer: GitSourceDeployer | undefined;
  /** Open an SSE stream on the request (the controller's, so close() ends it). */
  sse: (request: FastifyRequest, reply: FastifyReply) => SseWriter;
}

export function registerDeployGit(api: FastifyInstance, options: DeployGitRouteOptions): void {
  api.post('/apps/:app/deploy-git', { schema: { params: S.appParams, body: S.deployGitBody } }, async (req: FastifyRequest<{ Params: { app: string }; Body: DeployGitInput }>, reply) => {
    const { deployer } = options;
    if (!deployer) throw new UnavailableError(ControllerErrorCodes.NO_GIT_DEPLOYER, 'this controller has no builder to deploy from git URLs', { retryable: false });
    const app = await options.store.getApp(req.params.app);
    const source: DeployGitInput = { url: req.body.url, ...(req.body.ref === undefined ? {} : { ref: req.body.ref }) };
    deployer.check(source);
    const writer = options.sse(req, reply);
    const abort = new AbortController();
    void writer.closed.then(() => abort.abort(new Error('the client went away')));
    let n = 0;
    try {
      await deployer.deploy(app.name, source, { output: (line) => writer.sendJson('output', { line }, String(n++)), signal: abort.signal });
      writer.sendJson('done', {}, String(n++));
    } catch (err) {
      // The client rebuilds the server's class; an error of no kind is a failed deploy.
      writer.sendError(err instanceof FlynnError ? err : new DeployFailedError((err as Error).message, { cause: err }), String(n++));
    }
    writer.end();
    return reply;
  });
}
