import { tracer } from '../common/trace.js';

/** Deploy phases are published on this `node:diagnostics_channel` as `{ phase, app }` (tracing, benchmarks). */
export const DEPLOY_TRACE_CHANNEL = 'flynn-ts:deploy';
const publish = tracer(DEPLOY_TRACE_CHANNEL);
/** Publish a deploy phase on {@link DEPLOY_TRACE_CHANNEL}. */
export const traceDeploy = (phase: string, app: string, jobId?: string) => publish(phase, jobId === undefined ? { app } : { app, jobId });
