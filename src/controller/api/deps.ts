/**
 * What the controller's HTTP routes share: the store, the grid, the deployment manager and a few
 * helpers. Each resource group registers its routes with `register…Routes(api, deps)` (one file
 * per group in this folder); `startController` (../server.ts) builds the deps and wires them.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { SseWriter } from '../../common/http/sse.js';
import type { DeploymentManager } from '../deployments.js';
import type { JobRunner } from '../jobs.js';
import type { Store } from '../store.js';
import type { App } from '../types.js';

/** The fastify instance the routes are registered on (internal: not part of the public API). */
export type ApiServer = FastifyInstance;

/** A request with typed params, body and query. */
export type Req<P = { app: string }, B = unknown, Q = unknown> = FastifyRequest<{ Params: P; Body: B; Querystring: Q }>;

export interface ApiDeps {
  store: Store;
  jobs: JobRunner;
  deployments: DeploymentManager;
  /** The app by name or id (404 otherwise). */
  app(ref: string): Promise<App>;
  /** 413 for an env over the size limits, naming the variable (under `field`) or the total. */
  checkEnvSize(env: Record<string, string>, field: string): void;
  /** Take over the reply as a Server-Sent Events stream (ended when the controller closes). */
  sse(request: FastifyRequest, reply: FastifyReply): SseWriter;
  /** Git host shown to clients, or null. */
  gitHost: string | null;
  /** The cluster's app domain (ControllerOptions.appDomain), or null. */
  appDomain: string | null;
  /** Ports a TCP route cannot take, with what holds each (ControllerOptions.reservedPorts). */
  reservedPorts: Readonly<Record<number, string>>;
  /** Most jobs of one process type an app may be scaled to. */
  maxScale: number;
  /** Called after an app is deleted, to remove what lives outside the store. */
  onAppDeleted?: (app: App) => Promise<void>;
}
